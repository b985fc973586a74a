"""The customer tracking page: texts in both languages (:mod:`.texts`), the carrier data table
(``carriers.json``), the page as data and as HTML (:mod:`.render`, Jinja2 templates under ``templates/``)."""
