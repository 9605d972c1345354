"""Sphinx glue for the tables the declarations write (``soxs_lib.cli.doctables``):
``{soxs-table} parameters`` (inputs, outputs, qc, settings, cli) in a MyST page."""

from docutils.parsers.rst import Parser
from sphinx.util.docutils import SphinxDirective, new_document

from soxs_lib.cli import doctables


class DeclaredTable(SphinxDirective):
    """The table (or, for ``cli``, the sections) of one declaration."""

    required_arguments = 1

    def run(self):
        """The nodes of the reStructuredText the declarations give (parsed as
        such: the page around it is Markdown)."""
        text = doctables.RENDERERS[self.arguments[0]]()
        doc = new_document(f"soxs_lib declarations ({self.arguments[0]})",
                           self.state.document.settings)
        Parser().parse(text, doc)
        return list(doc.children)


def setup(app):
    """Register the directive."""
    app.add_directive("soxs-table", DeclaredTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
