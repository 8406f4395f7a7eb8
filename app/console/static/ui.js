// DOM and formatting helpers. Text is always set as text (never as HTML): event content, tool
// output and names come from models and tools, and must not run in the console.

export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const node = document.createElement(name || "div");
  if (classes.length) node.classList.add(...classes);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

export function badge(text, kind) {
  return h(`span.badge.${kind || "plain"}`, { text });
}

export function statusBadge(session) {
  if (session.archived_at) return badge("archived", "archived");
  return h(`span.badge.${session.status}`, { "data-status": session.status, text: session.status });
}

export function json(value) {
  return h("pre.json", { text: JSON.stringify(value, null, 2) });
}

const NUMBER = new Intl.NumberFormat("en-US");
export const count = (n) => NUMBER.format(n || 0);

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  let text;
  if (seconds < 45) text = "just now";
  else if (seconds < 3600) text = `${Math.round(seconds / 60)} min ago`;
  else if (seconds < 86400) text = `${Math.round(seconds / 3600)} h ago`;
  else text = date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
  return h("span", { title: date.toLocaleString(), text });
}

export function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString(undefined, { hour12: false }) : "";
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** `usage.list_cost` is whole cents as a string. */
export function cost(listCost) {
  if (!listCost) return "—";
  const cents = Number(listCost.amount || 0);
  return `${(cents / 100).toLocaleString("en-US", { style: "currency", currency: listCost.currency || "USD" })}`;
}

export function idLink(href, id) {
  return h("a.mono", { href, text: id });
}

export function table(columns, rows, { onRow, key = (row) => row.id, empty = "Nothing here yet." } = {}) {
  if (!rows.length) return h("div.empty", { text: empty });
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { text: c.title }))));
  const body = h(
    "tbody",
    {},
    rows.map((row) =>
      h(
        `tr${onRow ? ".link" : ""}`,
        { onclick: onRow ? (e) => !e.target.closest("a") && onRow(row) : null, dataset: { id: key(row) } },
        columns.map((c) => h("td", {}, c.render(row))),
      ),
    ),
  );
  return h("table", {}, head, body);
}

export function errorBox(error) {
  const text = error && error.message ? error.message : String(error);
  const request = error && error.requestId ? ` (request ${error.requestId})` : "";
  return h("div.error-box", { role: "alert", text: `${text}${request}` });
}

export function textOf(content) {
  return (content || [])
    .map((block) => (block.type === "text" ? block.text : `[${block.type}]`))
    .join("\n");
}
