"""Real sources in front of ingest: a syslog listener and an snmptrapd trap handler.

They run next to the devices (or as a Knative source), turn what the devices
send into MUTT CloudEvents and POST them to ingest, which stays the only
place that validates and admits events. See docs/sources.md.
"""
