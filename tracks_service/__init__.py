"""The tracks family (subtitles, chapters, thumbnails). Its RPCs are declared in
protos/transmute/tracks/v1/tracks.proto; the server arrives with its issue, and until then the
gateway answers these kinds with 501 kind_unavailable."""
