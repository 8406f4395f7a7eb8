// A session's timeline: the listed history, then the live stream, rendered as one list in log
// order. Previews (`event_start` / `event_delta`) show text as the model writes it; tool calls
// are joined with their results and confirmations; model request spans with their timing and
// tokens. Every event is shown once, whichever way it arrived (deduplicated by id).

import { clock, cost, count, duration, h, replace, textOf } from "./ui.js";

const TOOL_USES = new Set(["agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use"]);
const RESULT_KEY = {
  "agent.tool_result": "tool_use_id",
  "agent.mcp_tool_result": "mcp_tool_use_id",
  "user.tool_result": "tool_use_id",
  "user.custom_tool_result": "custom_tool_use_id",
};
const MARKERS = {
  "session.status_running": "Running",
  "session.status_rescheduled": "Rescheduled: retrying after a transient error",
  "session.status_terminated": "Terminated",
  "user.interrupt": "Interrupted",
  "agent.thread_context_compacted": "Context compacted",
  "session.deleted": "Session deleted",
};

function card(kind, title, event, ...body) {
  return h(
    `div.ev.${kind}`,
    { dataset: { type: event.type, id: event.id || "" } },
    h("div.ev-head", {}, h("span.kind", { text: title }), h("span.time", { text: clock(event.processed_at) })),
    ...body,
  );
}

function resultText(content) {
  if (!content || !content.length) return "(no output)";
  return textOf(content);
}

export class Timeline {
  constructor(root, { onConfirm, onAnswer, onChange }) {
    this.root = root;
    this.onConfirm = onConfirm;
    this.onAnswer = onAnswer;
    this.onChange = onChange || (() => {});
    this.nodes = new Map(); // event id -> element (tool cards and spans by their own event id)
    this.previews = new Map(); // preview id -> {node, blocks: [text node]}
    this.spans = new Map(); // span start id -> {node, started}
    this.confirmed = new Set();
    this.answered = new Set();
    this.pendingAsk = new Set();
    this.timer = setInterval(() => this.tick(), 250);
  }

  close() {
    clearInterval(this.timer);
  }

  /** Model requests seen so far, with their total time (ms) for the side panel. */
  spanTotals() {
    let requests = 0;
    let ms = 0;
    for (const span of this.spans.values()) {
      requests += 1;
      if (span.ended) ms += span.ended - span.started;
    }
    return { requests, ms };
  }

  add(event, { pending = false } = {}) {
    if (event.id && this.nodes.has(event.id) && !this.nodes.get(event.id).classList.contains("pending")) {
      if (!["agent.message", "agent.thinking"].includes(event.type)) return;
    }
    const follow = window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
    this.render(event, pending);
    this.onChange(event);
    if (follow) window.scrollTo(0, document.body.scrollHeight);
  }

  /** `event` is shown inside `node` (a result in its call's card, a span's end in its start). */
  merge(event, node) {
    node.dataset.merged = [node.dataset.merged, event.id].filter(Boolean).join(" ");
    this.nodes.set(event.id, node);
    return node;
  }

  put(event, node) {
    const old = event.id && this.nodes.get(event.id);
    // A queued message shown when it was sent moves to its place in the log once processed.
    if (old && !old.classList.contains("pending")) old.replaceWith(node);
    else {
      old?.remove();
      this.root.append(node);
    }
    if (event.id) this.nodes.set(event.id, node);
    return node;
  }

  render(event, pending) {
    const type = event.type;
    if (type === "event_start") return this.openPreview(event.event);
    if (type === "event_delta") return this.delta(event);
    if (type === "user.message") {
      const node = this.put(event, card("user", pending ? "You (queued)" : "You", event, h("div.ev-body", { text: textOf(event.content) })));
      node.classList.toggle("pending", pending);
      return node;
    }
    if (type === "agent.message") return this.finishPreview(event, "agent", "Agent", h("div.ev-body", { text: textOf(event.content) }));
    if (type === "agent.thinking") return this.finishPreview(event, "thinking", "Thinking", h("div.ev-body", { text: "The model thought before answering (thinking text is not kept in the log)." }));
    if (TOOL_USES.has(type)) return this.toolUse(event);
    if (type in RESULT_KEY) return this.toolResult(event, event[RESULT_KEY[type]]);
    if (type === "user.tool_confirmation") return this.confirmation(event);
    if (type === "span.model_request_start") return this.spanStart(event);
    if (type === "span.model_request_end") return this.spanEnd(event);
    if (type === "session.status_idle") return this.idle(event);
    if (type === "session.error") return this.error(event);
    if (type === "session.usage") return this.usage(event);
    if (type.startsWith("session.thread_status_")) {
      const state = type.slice("session.thread_status_".length);
      return this.put(event, card("marker", `Thread ${event.agent_name}: ${state}`, event));
    }
    if (type in MARKERS) return this.put(event, card("marker", MARKERS[type], event));
    return this.put(event, card("other", type, event, h("pre.json", { text: JSON.stringify(event, null, 2) })));
  }

  // --- previews ---------------------------------------------------------------------------
  openPreview(target) {
    if (this.nodes.has(target.id)) return null;
    const thinking = target.type === "agent.thinking";
    const body = h("div.ev-body", { text: thinking ? "Thinking…" : "" });
    const node = card(thinking ? "thinking" : "agent", thinking ? "Thinking" : "Agent", { type: target.type, id: target.id }, body);
    node.classList.add("streaming");
    this.previews.set(target.id, { node, body, blocks: [] });
    return this.put(target, node);
  }

  delta(event) {
    const preview = this.previews.get(event.event_id);
    if (!preview) return null;
    const index = event.delta.index ?? 0;
    while (preview.blocks.length <= index) {
      const block = document.createTextNode(preview.blocks.length ? "\n" : "");
      preview.blocks.push(block);
      preview.body.append(block);
    }
    preview.blocks[index].appendData(event.delta.content?.text || "");
    return preview.node;
  }

  finishPreview(event, kind, title, body) {
    this.previews.delete(event.id);
    return this.put(event, card(kind, title, event, body));
  }

  closePreviews() {
    // A request that ended early (error, interrupt) sends no final event: its preview stops here.
    for (const [id, preview] of this.previews) {
      preview.node.classList.remove("streaming");
      preview.node.classList.add("cut");
      preview.body.append(h("span.faint", { text: " (cut short)" }));
      this.previews.delete(id);
    }
  }

  // --- tools ------------------------------------------------------------------------------
  toolUse(event) {
    const label = event.type === "agent.mcp_tool_use" ? `${event.mcp_server_name} · ${event.name}` : event.name;
    const kind = event.type === "agent.custom_tool_use" ? "Custom tool" : event.type === "agent.mcp_tool_use" ? "MCP tool" : "Tool";
    const head = h("div.ev-head", {}, h("span.kind", { text: `${kind}: ${label}` }));
    if (event.evaluated_permission === "ask") head.append(h("span.badge.ask", { text: "needs confirmation" }));
    head.append(h("span.time", { text: clock(event.processed_at) }));
    const io = h("div.tool-io", {}, h("div", {}, h("div.label", { text: "Input" }), h("pre.input", { text: JSON.stringify(event.input, null, 2) })));
    const result = h("div.result", {}, h("div.label", { text: "Output" }), h("pre.faint", { text: "waiting…" }));
    io.append(result);
    const node = h("div.ev.tool", { dataset: { type: event.type, id: event.id, tool: event.name } }, head, io);
    if (event.evaluated_permission === "ask" && !this.confirmed.has(event.id)) this.pendingAsk.add(event.id);
    return this.put(event, node);
  }

  toolResult(event, useId) {
    this.answered.add(useId);
    this.clearConfirm(useId);
    const node = this.nodes.get(useId);
    const text = resultText(event.content);
    if (!node) return this.put(event, card("tool", "Tool result", event, h("div.tool-io", {}, h("pre", { text }))));
    const slot = node.querySelector(".result");
    replace(slot, h("div.label", { text: event.is_error ? "Output (error)" : "Output" }), h(`pre.output${event.is_error ? ".err" : ""}`, { text }));
    node.classList.toggle("failed", Boolean(event.is_error));
    node.dataset.done = "true";
    return this.merge(event, node);
  }

  confirmation(event) {
    this.confirmed.add(event.tool_use_id);
    this.pendingAsk.delete(event.tool_use_id);
    this.clearConfirm(event.tool_use_id);
    const node = this.nodes.get(event.tool_use_id);
    const verdict = event.result === "allow" ? "Allowed" : `Denied${event.deny_message ? `: ${event.deny_message}` : ""}`;
    if (node) {
      node.querySelector(".ev-head .badge.ask")?.replaceWith(h(`span.badge.${event.result === "allow" ? "idle" : "terminated"}`, { text: verdict }));
    }
    return this.put(event, card("marker", `${verdict} by user`, event));
  }

  clearConfirm(useId) {
    for (const box of this.nodes.get(useId)?.querySelectorAll(".confirm") || []) box.remove();
  }

  askFor(useId) {
    const node = this.nodes.get(useId);
    if (!node || node.querySelector(".confirm") || this.confirmed.has(useId) || this.answered.has(useId)) return;
    const reason = h("input", { type: "text", name: "deny-message", placeholder: "Reason if you deny (optional)" });
    const buttons = [];
    const send = async (result) => {
      buttons.forEach((b) => (b.disabled = true));
      try {
        await this.onConfirm(useId, result, reason.value.trim());
        box.replaceChildren(h("span.what", { text: "Sent, waiting for the agent…" }));
      } catch (error) {
        buttons.forEach((b) => (b.disabled = false));
        box.append(h("span.small", { text: error.message }));
      }
    };
    buttons.push(
      h("button.btn.ok", { "data-action": "allow", text: "Allow", onclick: () => send("allow") }),
      h("button.btn.danger", { "data-action": "deny", text: "Deny", onclick: () => send("deny") }),
    );
    const box = h("div.confirm", {}, h("span.what", { text: "The agent asks to run this tool." }), reason, ...buttons);
    node.append(box);
  }

  /** A custom tool's call, or a built-in one of a self-hosted environment, waits for its result. */
  answerFor(useId) {
    const node = this.nodes.get(useId);
    if (!node || !node.classList.contains("tool") || node.querySelector(".answer") || this.answered.has(useId)) return;
    const custom = node.dataset.type === "agent.custom_tool_use";
    const text = h("textarea", { name: "tool-result", placeholder: "The tool's result, as text" });
    const failed = h("input", { type: "checkbox", name: "is-error" });
    const button = h("button.btn.primary", { "data-action": "answer", type: "submit", text: "Send result" });
    const form = h(
      "form.confirm.answer",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          button.disabled = true;
          try {
            await this.onAnswer(useId, custom, text.value, failed.checked);
            form.replaceChildren(h("span.what", { text: "Sent, waiting for the agent…" }));
          } catch (error) {
            button.disabled = false;
            form.append(h("span.small", { text: error.message }));
          }
        },
      },
      h("span.what", { text: custom ? "The agent waits for this custom tool's result." : "The agent waits for this tool's result (self-hosted)." }),
      text,
      h("label.field.check", {}, failed, "is an error"),
      button,
    );
    node.append(form);
  }

  // --- spans and status -----------------------------------------------------------------------
  spanStart(event) {
    const elapsed = h("span.elapsed.mono", { text: "" });
    const node = card("span", "Model request", event);
    node.classList.add("open");
    node.querySelector(".ev-head .time").before(elapsed);
    this.spans.set(event.id, { node, elapsed, started: Date.parse(event.processed_at), ended: null, live: Date.now() });
    return this.put(event, node);
  }

  spanEnd(event) {
    this.closePreviews();
    const span = this.spans.get(event.model_request_start_id);
    if (!span) return this.put(event, card("span", "Model request ended", event));
    span.ended = Date.parse(event.processed_at);
    const u = event.model_usage;
    const node = span.node;
    node.classList.remove("open");
    node.classList.toggle("failed", Boolean(event.is_error));
    node.querySelector(".kind").textContent = event.is_error ? "Model request failed" : "Model request";
    span.elapsed.textContent = duration(span.ended - span.started);
    span.elapsed.dataset.ms = String(span.ended - span.started);
    const tokens = h(
      "span.tokens",
      {},
      h("span", { title: "input tokens", text: `in ${count(u.input_tokens)}` }),
      h("span", { title: "output tokens", text: `out ${count(u.output_tokens)}` }),
      h("span", { title: "cache read input tokens", text: `cache read ${count(u.cache_read_input_tokens)}` }),
      h("span", { title: "cache creation input tokens", text: `cache write ${count(u.cache_creation_input_tokens)}` }),
    );
    span.elapsed.after(tokens);
    return this.merge(event, node);
  }

  tick() {
    for (const span of this.spans.values()) {
      if (!span.ended) span.elapsed.textContent = duration(Date.now() - span.live);
    }
  }

  idle(event) {
    const reason = event.stop_reason?.type || "end_turn";
    const label = { end_turn: "Idle: turn ended", requires_action: "Waiting for you", retries_exhausted: "Idle: retries exhausted", refusal: "Idle: the model refused" }[reason] || `Idle: ${reason}`;
    const node = this.put(event, card("marker", label, event));
    if (reason === "requires_action") {
      for (const id of event.stop_reason.event_ids || []) {
        if (this.pendingAsk.has(id)) this.askFor(id);
        else this.answerFor(id);
      }
    }
    return node;
  }

  usage(event) {
    const u = event.usage || {};
    const written = (u.cache_creation?.ephemeral_5m_input_tokens || 0) + (u.cache_creation?.ephemeral_1h_input_tokens || 0);
    const text = `Usage so far: in ${count(u.input_tokens)} · out ${count(u.output_tokens)} · cache read ${count(u.cache_read_input_tokens)} · cache write ${count(written)} · ${cost(u.list_cost)}`;
    return this.put(event, card("marker.usage", text, event));
  }

  error(event) {
    const e = event.error || {};
    const retry = e.retry_status?.type ? ` (${e.retry_status.type})` : "";
    return this.put(event, card("error", `Error: ${e.type || "unknown"}${retry}`, event, h("div.ev-body", { text: e.message || "" })));
  }
}
