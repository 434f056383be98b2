"""Wire format shared by every surface: SSE framing, headers sent straight to the WSGI server, the OpenAI error
envelope and its handlers, CORS."""
