"""How ``mutt`` hosts a function outside Knative: the stream worker, the relay, the ops server."""
