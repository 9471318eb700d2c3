// MathJax 3 configuration. MathJax itself is bundled under javascripts/mathjax/ (the tex-chtml component and its
// woff-v2 fonts from the npm package mathjax@3.2.2, Apache-2.0, see javascripts/mathjax/LICENSE), so the site
// typesets its formulas without network access. pymdownx.arithmatex (generic mode) writes \( \) and \[ \] on the
// Markdown pages; the tutorial notebooks keep $ and $$, so both are delimiters. <code> and <pre> are skipped.
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
};
