"""The intelligence family: speech, nsfw, summary and outline on models that ship in pip packages
(docs/models.md), loaded once per worker process before it reports SERVING."""
