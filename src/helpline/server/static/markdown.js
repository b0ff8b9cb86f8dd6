// A tiny, safe Markdown renderer: it builds DOM nodes and only ever sets textContent, so
// model output and customer text can never inject markup or script. Supported: paragraphs,
// line breaks, headings, bullet and numbered lists, code blocks, `code`, **bold**, *italics*,
// [links](https://…) and bare https:// links — links to http(s) only, opened safely.
// Bidirectional control characters are shown as codes, so no text displays reordered.

import { showBidiControls } from "./common.js";

const INLINE =
  /`([^`\n]+)`|\[([^\]\n]+)\]\(([^()\s]+)\)|\*\*(?=\S)([^*\n]+?)\*\*|__(?=\S)([^_\n]+?)__|\*(?=[^\s*])([^*\n]+?)\*|(?<![\w])_(?=\S)([^_\n]+?)_(?![\w])|(https?:\/\/[^\s<>"]+)/;

/** The http(s) URL `raw` denotes, or null for anything else (javascript:, data:, relative …). */
export function safeHref(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function link(href, children) {
  const a = document.createElement("a");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer nofollow";
  a.append(...children);
  return a;
}

function element(tag, children) {
  const node = document.createElement(tag);
  node.append(...children);
  return node;
}

/** Inline Markdown in `text` as an array of nodes. */
export function renderInline(text, allowLinks = true) {
  const nodes = [];
  let rest = showBidiControls(text);
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      nodes.push(document.createTextNode(rest));
      break;
    }
    if (match.index > 0) nodes.push(document.createTextNode(rest.slice(0, match.index)));
    const [whole, code, label, target, bold, bold2, italic, italic2, bare] = match;
    let consumed = whole.length;
    if (code !== undefined) {
      nodes.push(element("code", [document.createTextNode(code)]));
    } else if (label !== undefined) {
      const href = allowLinks ? safeHref(target) : null;
      const inner = renderInline(label, false);
      nodes.push(...(href ? [link(href, inner)] : inner));
    } else if (bold !== undefined || bold2 !== undefined) {
      nodes.push(element("strong", renderInline(bold ?? bold2, allowLinks)));
    } else if (italic !== undefined || italic2 !== undefined) {
      nodes.push(element("em", renderInline(italic ?? italic2, allowLinks)));
    } else {
      // A bare link; trailing punctuation belongs to the sentence, not the URL.
      const url = bare.replace(/[.,;:!?)\]'*_]+$/, "");
      consumed = url.length;
      const href = allowLinks ? safeHref(url) : null;
      nodes.push(href ? link(href, [document.createTextNode(url)]) : document.createTextNode(url));
    }
    rest = rest.slice(match.index + consumed);
  }
  return nodes;
}

const LIST_ITEM = /^\s{0,3}(?:([-*+])|(\d{1,3})[.)])\s+(.*)$/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const FENCE = /^\s{0,3}```/;

/** Markdown `source` as a DocumentFragment of safe nodes. */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  const lines = showBidiControls(source).replace(/\r\n?/g, "\n").split("\n");
  let paragraph = [];
  let list = null;

  const flushParagraph = () => {
    if (!paragraph.length) return;
    const p = document.createElement("p");
    paragraph.forEach((line, i) => {
      if (i > 0) p.append(document.createElement("br"));
      p.append(...renderInline(line));
    });
    fragment.append(p);
    paragraph = [];
  };
  const flushList = () => {
    list = null;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (FENCE.test(line)) {
      flushParagraph();
      flushList();
      const code = [];
      for (i++; i < lines.length && !FENCE.test(lines[i]); i++) code.push(lines[i]);
      fragment.append(element("pre", [element("code", [document.createTextNode(code.join("\n"))])]));
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      flushParagraph();
      const tag = item[1] ? "ul" : "ol";
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = document.createElement(tag);
        if (tag === "ol" && item[2] !== "1") list.start = Number(item[2]);
        fragment.append(list);
      }
      list.append(element("li", renderInline(item[3])));
      continue;
    }
    if (!line.trim()) {
      flushParagraph();
      flushList();
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flushParagraph();
      flushList();
      fragment.append(element(heading[1].length <= 2 ? "h3" : "h4", renderInline(heading[2])));
      continue;
    }
    if (list && /^\s{2,}\S/.test(line)) {
      // An indented continuation of the last list item.
      const last = list.lastElementChild;
      last.append(document.createElement("br"), ...renderInline(line.trim()));
      continue;
    }
    flushList();
    paragraph.push(line);
  }
  flushParagraph();
  return fragment;
}
