"""The API surfaces, one blueprint each: chat completions (request parsing, JSON and streamed answers), models,
embeddings, Ollama's native API."""
