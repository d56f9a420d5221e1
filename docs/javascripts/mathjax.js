// MathJax configuration: the math of the pages (pymdownx.arithmatex, generic mode, as in
// Material's documentation) and the $...$ math of the notebooks' Markdown cells
// (mkdocs-jupyter renders them into "jp-RenderedMarkdown" blocks). Everything else is
// left alone, so a "$" in code or prose is never taken for math.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown",
  },
};

document$.subscribe(() => {
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
