"""Images attached to a message: the panel, thumbnails, the viewer and the checks."""
