// MathJax 3 configuration for pymdownx.arithmatex (generic mode): typeset only the math it marks.
// MathJax itself is bundled under javascripts/mathjax/ (tex-chtml component and its woff-v2 fonts, Apache-2.0,
// from the npm package mathjax@3.2.2), so the site renders its formulas without network access.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
};
