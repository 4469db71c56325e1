"""Shared runtime for Transmute services: settings, ids, errors, task records, work queue,
events, storage, safe fetching and the ffmpeg runner. Every service uses it the same way."""
