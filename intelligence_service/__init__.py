"""The intelligence family (speech, nsfw, summary, outline). Its RPCs are declared in
protos/transmute/intelligence/v1/intelligence.proto; the server arrives with its issue, and until
then the gateway answers these kinds with 501 kind_unavailable."""
