"""What a mapping's text means: Jinja templates (``templating``), JMESPath expressions
(``expressions``), the filters both may use (``filters``), exact money (``money``) and the rules
for values rendered into URLs (``urls``). No I/O; used by ``compile`` and ``runtime`` alike."""
