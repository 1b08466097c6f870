"""Files to indexed chunks, and questions back to passages.

Imports langchain-core, Chroma and sentence-transformers (lazily); never `chains`.

    index           DocumentIndex: the facade of this package, and each collection's lifecycle
                    (create, ingest, reindex, check, delete)
    Collections and their state in SQL
      catalog       the collection registry (catalog_tables: the tables; naming: the name rule)
      summaries     the stored summaries of documents and collections
      ledger        documents and chunks, and the crash-safe write protocol
      lease         a collection's write lock, as a context manager
      jobs          upload jobs, visible to every replica
    Reading files
      scan          walking a folder; detect: what a file is and how it is encoded
      reading       one file parsed under guards; limits: what its text must be
      loaders       the parser of each kind: text, Markdown, RST; html; pdf; office: DOCX;
                    records: CSV, JSON, JSONL; sheets: XLSX; slides: PPTX; mail: EML, MBOX;
                    books: EPUB, ODT; images: PNG, JPEG, TIFF
      ocr           Tesseract on scanned pages and images; activity: what a parser is doing, for progress
      tables        table rows written with their header
      sections      headings and decoding shared by the parsers
      splitter      sections to chunks in the embedder's tokens
      ingest        a sync planned and run under the lease; writer: staged, embedded, committed in batches
      report        what an ingest reports
    Vectors and keywords
      embedder      the local embedding models; onnx_export: their int8 ONNX file
      embedders     which embedder serves which collection
      store         Chroma, embedded or server
      keywords      keyword terms and stemming; keyword_index: the SQL keyword tables
    Search
      search        one hybrid search (by meaning, by keyword, by identifier), fused (hybrid)
      retriever     PassageRetriever, the LangChain retriever that wraps search
      rerank        an optional cross-encoder re-ranker
      passage       what a search returns; words: content words of a question
"""
