"""Frames in and results out for the live loop (``edgetk run``).

- :mod:`~toolkit.live.sources` / :mod:`~toolkit.live.capture`: ``open_source(text)`` for
  cameras, ``/dev/videoN``, rtsp/http streams (reconnected with backoff), ``csi://N``,
  ``gst:PIPELINE``, video files, image folders and globs, and the ``synthetic`` belt.
- :mod:`~toolkit.live.reader`: the capture thread (newest frame only for live sources).
- :mod:`~toolkit.live.sinks`: events (JSON lines), NG snapshots, annotated video;
  :mod:`~toolkit.live.display`: a window.
- :mod:`~toolkit.live.overlay`, :mod:`~toolkit.live.verdict`, :mod:`~toolkit.live.stats`.
- :mod:`~toolkit.live.run`: ``run_live(model, source, ...)``, what ``edgetk run`` calls;
  :mod:`~toolkit.demo.live_step`: ``run_live_step`` for ``edgetk demo``.

The loop itself is :mod:`toolkit.live.loop`, with its inference thread
(:mod:`~toolkit.live.worker`), its fan-out to the sinks (:mod:`~toolkit.live.fanout`) and its
stop flag and signal handling (:mod:`~toolkit.live.stop`).
"""
