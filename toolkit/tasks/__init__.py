"""Tasks: pre- and post-processing around a model, and their result types."""
