"""Wire schemas: the OpenAI canonical form, Mistral converters, SSE framing."""
