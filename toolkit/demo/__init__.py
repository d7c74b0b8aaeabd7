"""``edgetk demo``: every step in one place. ``run`` holds the step list and runs it;
``context`` what the steps share; ``classify_steps`` the classifier steps; ``quantize_step``,
``detect`` and ``live_step`` the int8, detector and live-loop steps.
"""
