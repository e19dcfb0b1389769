// derive's math renderer: reads one JSON array of [tex, displayMode] pairs per line on
// stdin, writes one JSON array of {html} or {error} per line on stdout.
// Usage: node render_math.js PATH/TO/node_modules/katex
"use strict";
const katex = require(process.argv[2]);
const readline = require("readline");

const options = (display) => ({displayMode: display, throwOnError: true, strict: "error", output: "htmlAndMathml"});

function render([tex, display]) {
  try {
    return {html: katex.renderToString(tex, options(display))};
  } catch (e) {
    return {error: String(e.message || e)};
  }
}

// Stopped (Ctrl-C, a failed build): the reader is gone; end quietly, not with an EPIPE stack trace.
process.stdout.on("error", () => process.exit(0));
const lines = readline.createInterface({input: process.stdin, terminal: false});
lines.on("line", (line) => {
  process.stdout.write(JSON.stringify(JSON.parse(line).map(render)) + "\n");
});
