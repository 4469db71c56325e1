"""The tracks family: subtitles, chapters and thumbnails, the first family that calls another
(intelligence, through its public gRPC API) with child tasks (``taskkit.runtime.children``)."""
