"""Model quality, one home for ``edgetk val``, the quantize gate and training:

- ``classify``: top-1/top-5 on an ImageFolder (:func:`validate_classifier`);
- ``detect``: mAP on a YOLO set (:func:`validate_detector`), from ``metrics``;
- ``metrics``: average precision and per-image box matching;
- ``agreement``: a converted model against its float original (outputs, top-1/box agreement).
"""
