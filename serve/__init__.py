"""serve: an archive over HTTP, as a wubloader node serves chat (WUBLOADER_HTTP.md), read-only.

`routes` (pure) turns a request into what it names or why it is refused; `app` is the WSGI
application that reads the archive; `server` runs it under waitress. docs/serve-sync.md says why
waitress, and what each route answers.
"""
