// One session: its live timeline, usage and cost, and the actions a user takes on it (send a
// message, interrupt, answer a tool confirmation).

import { follow, get, getAll, post } from "./api.js";
import { Timeline } from "./timeline.js";
import { cost, count, duration, errorBox, h, replace, statusBadge, when } from "./ui.js";

const STATUS_OF = {
  "session.status_running": "running",
  "session.status_idle": "idle",
  "session.status_rescheduled": "rescheduling",
  "session.status_terminated": "terminated",
};

function stat(key, value, id) {
  return h("div.stat", {}, h("div.k", { text: key }), h("div.v", { id, text: value }));
}

export async function sessionPage(root, sessionId) {
  const path = `/v1/sessions/${encodeURIComponent(sessionId)}`;
  let session = await get(path);
  const history = await getAll(`${path}/events`, { limit: 1000 }, 1_000_000);

  const badge = h("span", { id: "session-status" }, statusBadge(session));
  const live = h("span.live", { id: "live", text: "connecting" });
  const problem = h("div");
  const events = h("div.timeline", { id: "timeline" });
  const send = (payload) => post(`${path}/events`, { events: [payload] });

  const interrupt = h("button.btn.danger", {
    id: "interrupt",
    text: "Interrupt",
    onclick: async () => {
      interrupt.disabled = true;
      try {
        await send({ type: "user.interrupt" });
      } catch (error) {
        replace(problem, errorBox(error));
      }
    },
  });

  const stats = h("div.stats", { id: "usage" });
  const showUsage = () => {
    const u = session.usage;
    const spans = timeline.spanTotals();
    replace(
      stats,
      stat("Input tokens", count(u.input_tokens), "usage-input"),
      stat("Output tokens", count(u.output_tokens), "usage-output"),
      stat("Cache read", count(u.cache_read_input_tokens), "usage-cache-read"),
      stat("Cache write", count((u.cache_creation?.ephemeral_5m_input_tokens || 0) + (u.cache_creation?.ephemeral_1h_input_tokens || 0)), "usage-cache-write"),
      stat("Model requests", count(spans.requests), "usage-requests"),
      stat("Model time", duration(spans.ms), "usage-model-time"),
      stat("List cost", cost(u.list_cost), "usage-cost"),
      stat("Active", duration((u.active_seconds || 0) * 1000), "usage-active"),
    );
  };

  const setStatus = (status) => {
    session = { ...session, status };
    replace(badge, statusBadge(session));
    // Only a working session has something to interrupt (a pending confirmation is denied instead).
    interrupt.disabled = status === "idle" || status === "terminated" || Boolean(session.archived_at);
    composerButton.disabled = status === "terminated" || Boolean(session.archived_at);
  };

  let refreshing = null;
  const refresh = () => {
    // Usage lives on the session; re-read it once a model request or a turn has ended.
    refreshing ||= get(path)
      .then((fresh) => {
        session = { ...fresh, status: session.status };
        showUsage();
      })
      .catch(() => {})
      .finally(() => {
        refreshing = null;
      });
  };

  const timeline = new Timeline(events, {
    onConfirm: (toolUseId, result, reason) =>
      send({ type: "user.tool_confirmation", tool_use_id: toolUseId, result, ...(result === "deny" && reason ? { deny_message: reason } : {}) }),
    onAnswer: (useId, custom, text, isError) =>
      send({
        ...(custom ? { type: "user.custom_tool_result", custom_tool_use_id: useId } : { type: "user.tool_result", tool_use_id: useId }),
        content: [{ type: "text", text }],
        ...(isError ? { is_error: true } : {}),
      }),
    onChange: (event) => {
      if (event.type in STATUS_OF) setStatus(STATUS_OF[event.type]);
      if (event.type === "session.usage") {
        session = { ...session, usage: { ...session.usage, ...event.usage } };
        showUsage();
      } else if (event.type === "span.model_request_end" || event.type === "session.status_idle") {
        refresh();
      }
    },
  });

  const text = h("textarea", { id: "message", name: "message", placeholder: "Send a message to the agent… (Ctrl+Enter)" });
  const composerButton = h("button.btn.primary", { id: "send", type: "submit", text: "Send" });
  const composer = h(
    "form.composer",
    {
      id: "composer",
      onsubmit: async (event) => {
        event.preventDefault();
        const message = text.value.trim();
        if (!message) return;
        composerButton.disabled = true;
        try {
          const echoed = await send({ type: "user.message", content: [{ type: "text", text: message }] });
          text.value = "";
          for (const sent of echoed.data) timeline.add(sent, { pending: !sent.processed_at });
          replace(problem);
        } catch (error) {
          replace(problem, errorBox(error));
        } finally {
          composerButton.disabled = session.status === "terminated";
        }
      },
    },
    text,
    h("div.row", {}, h("span.hint", { text: "Offline model: try /tool bash {\"command\": \"ls\"}" }), composerButton),
  );
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) composer.requestSubmit();
  });

  const agentLink = h("a", { href: `#/agents/${session.agent.id}`, text: `${session.agent.name} v${session.agent.version}` });
  replace(
    root,
    h("div.crumbs", {}, h("a", { href: "#/sessions", text: "Sessions" }), " / ", session.id),
    h(
      "div.page-head",
      {},
      h("div", {}, h("h1", { text: session.title || "Untitled session" }), h("div.sub", {}, badge, " ", live)),
      h("div", {}, interrupt),
    ),
    problem,
    h(
      "div.session-grid",
      {},
      h("div.panel", {}, events, composer),
      h(
        "div",
        {},
        h("div.panel", {}, h("div.panel-body", {}, h("h2", { text: "Usage" }), stats)),
        h(
          "div.panel",
          {},
          h(
            "div.panel-body",
            {},
            h("h2", { text: "Details" }),
            h(
              "dl.facts",
              {},
              h("dt", { text: "Agent" }), h("dd", {}, agentLink),
              h("dt", { text: "Model" }), h("dd.mono", { text: session.agent.model?.id || "—" }),
              h("dt", { text: "Environment" }), h("dd", {}, h("a.mono", { href: `#/environments/${session.environment_id}`, text: session.environment_id })),
              h("dt", { text: "Created" }), h("dd", {}, when(session.created_at)),
              h("dt", { text: "Id" }), h("dd.mono", { text: session.id }),
            ),
          ),
        ),
      ),
    ),
  );

  for (const event of history) timeline.add(event);
  setStatus(session.status);
  showUsage();
  if (!history.length) events.append(h("div.empty", { id: "no-events", text: "No events yet: send a message to start a turn." }));

  const stop = follow(session.id, {
    after: history.length ? history[history.length - 1].id : null,
    onEvent: (event) => {
      events.querySelector("#no-events")?.remove();
      timeline.add(event);
    },
    onState: (state, error) => {
      live.className = `live ${state === "live" ? "on" : state === "reconnecting" ? "retry" : ""}`;
      live.textContent = state === "live" ? "live" : state;
      if (error) replace(problem, errorBox(error));
    },
  });
  return () => {
    stop();
    timeline.close();
  };
}
