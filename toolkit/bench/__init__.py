"""Benchmarks (``edgetk benchmark``): the side-by-side runner (``runner``; its rows ``rows``,
sessions ``sessions``, the export cache ``cache``), the whole pipeline through the live loop
(``e2e``), the machine's floor (``floor``) and memory (``memory``, ``peak_rss``), and the
outputs: the terminal table (``terminal``), .json/.csv (``report``), .md/.html (``documents``),
plots (``plot``) and run-to-run comparison (``compare``)."""
