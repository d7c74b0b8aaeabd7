"""``edgetk demo``: every step in one place. ``run`` holds the step list and the classifier
steps; ``detect``, ``quantize_step`` and ``live_step`` the detector, int8 and live-loop steps.
"""
