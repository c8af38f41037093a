"""Pure builders: a typed model in, a child manifest (a plain dict) out. No I/O, no kopf, no client."""
