"""One-off studies behind a constant or a choice (``python -m bench.studies.<name>``): the gzip levels
(``levels``) and where the consumer's CPU goes (``consumer_profile``)."""
