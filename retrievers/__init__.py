"""Files to indexed chunks, and questions back to passages.

Imports langchain-core, Chroma and sentence-transformers (lazily); never `chains`.
"""
