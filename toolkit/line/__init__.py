"""Verdicts to the line and the people: MQTT, OPC UA and the operator web view, as sinks of
the live loop (:mod:`toolkit.live.sinks`). Each needs an extra: ``edgetk[line]`` (MQTT, OPC UA)
or ``edgetk[serve]`` (the web view); see docs/line-integration.md."""
