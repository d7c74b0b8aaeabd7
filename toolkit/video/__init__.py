"""Frames in and results out for the live loop (``edgetk run``).

- :mod:`~toolkit.video.sources` / :mod:`~toolkit.video.capture`: ``open_source(text)`` for
  cameras, ``/dev/videoN``, rtsp/http streams (reconnected with backoff), ``csi://N``,
  ``gst:PIPELINE``, video files, image folders and globs, and the ``synthetic`` belt.
- :mod:`~toolkit.video.reader`: the capture thread (newest frame only for live sources).
- :mod:`~toolkit.video.sinks`: events (JSON lines), NG snapshots, annotated video, a window.
- :mod:`~toolkit.video.overlay`, :mod:`~toolkit.video.verdict`, :mod:`~toolkit.video.stats`.
- :mod:`~toolkit.video.live`: ``run_live(model, source, ...)``, what ``edgetk run`` calls;
  :mod:`~toolkit.video.demo_step`: ``run_live_step`` for ``edgetk demo``.

The loop itself is :mod:`toolkit.pipeline`.
"""
