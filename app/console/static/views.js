// Pages of the console other than the live session: agents and their versions, environments,
// and sessions with filters.

import { get, getAll, post } from "./api.js";
import { badge, count, cost, errorBox, h, idLink, json, replace, statusBadge, table, when } from "./ui.js";

const go = (hash) => {
  location.hash = hash;
};

function pageHead(title, sub, ...actions) {
  return h("div.page-head", {}, h("div", {}, h("h1", { text: title }), sub && h("div.sub", {}, sub)), ...actions);
}

function toolSummary(agent) {
  const names = agent.tools.map((tool) => tool.name || tool.type);
  const mcp = agent.mcp_servers.map((server) => `mcp:${server.name}`);
  return [...names, ...mcp].join(", ") || "—";
}

// --- agents ---------------------------------------------------------------------------------

export async function agentsPage(root) {
  const agents = await getAll("/v1/agents", { limit: 100, include_archived: true });
  replace(
    root,
    pageHead("Agents", `${agents.length} agent${agents.length === 1 ? "" : "s"}, every version kept`),
    h(
      "div.panel",
      { id: "agents" },
      table(
        [
          { title: "Name", render: (a) => [h("strong", { text: a.name }), h("div.small.mono.faint", { text: a.id })] },
          { title: "Model", render: (a) => h("span.mono", { text: a.model.id }) },
          { title: "Version", render: (a) => badge(`v${a.version}`) },
          { title: "Tools", render: (a) => h("div.ellipsis.small", { text: toolSummary(a) }) },
          { title: "Updated", render: (a) => [when(a.updated_at), a.archived_at && [" ", badge("archived", "archived")]] },
        ],
        agents,
        { onRow: (a) => go(`#/agents/${a.id}`), empty: "No agents yet: create one with the SDK or the API." },
      ),
    ),
  );
}

function agentFacts(agent) {
  return h(
    "dl.facts",
    {},
    h("dt", { text: "Id" }), h("dd.mono", { text: agent.id }),
    h("dt", { text: "Model" }), h("dd.mono", { text: `${agent.model.id}${agent.model.speed ? ` (${agent.model.speed})` : ""}` }),
    h("dt", { text: "Description" }), h("dd", { text: agent.description || "—" }),
    h("dt", { text: "Tools" }), h("dd", { text: toolSummary(agent) }),
    h("dt", { text: "Skills" }), h("dd", { text: agent.skills.map((s) => s.skill_id).join(", ") || "—" }),
    h("dt", { text: "Created" }), h("dd", {}, when(agent.created_at)),
    h("dt", { text: "Updated" }), h("dd", {}, when(agent.updated_at)),
  );
}

export async function agentPage(root, agentId) {
  const [agent, versions, sessions] = await Promise.all([
    get(`/v1/agents/${encodeURIComponent(agentId)}`),
    getAll(`/v1/agents/${encodeURIComponent(agentId)}/versions`, { limit: 100 }),
    get("/v1/sessions", { agent_id: agentId, limit: 10, include_archived: true }),
  ]);
  const detail = h("div.panel-body", { id: "version-detail" });
  const show = (version) => {
    for (const row of root.querySelectorAll("#versions tbody tr")) {
      row.classList.toggle("selected", row.dataset.id === String(version.version));
    }
    replace(
      detail,
      h("h2", { text: `Version ${version.version}` }),
      agentFacts(version),
      h("h2.small.muted.gap", { text: "System prompt" }),
      h("pre.json", { text: version.system || "(none)" }),
      h("h2.small.muted.gap", { text: "Configuration" }),
      json(version),
    );
  };
  replace(
    root,
    h("div.crumbs", {}, h("a", { href: "#/agents", text: "Agents" }), " / ", agent.id),
    pageHead(
      agent.name,
      [badge(`v${agent.version}`), " ", agent.archived_at && badge("archived", "archived")],
      agent.archived_at ? null : await newSessionForm(agent),
    ),
    h(
      "div.grid2",
      {},
      h(
        "div",
        {},
        h(
          "div.panel",
          { id: "versions" },
          h("div.panel-body", {}, h("h2", { text: `Versions (${versions.length})` })),
          table(
            [
              { title: "Version", render: (v) => badge(`v${v.version}`) },
              { title: "Model", render: (v) => h("span.mono", { text: v.model.id }) },
              { title: "Saved", render: (v) => when(v.updated_at) },
            ],
            versions,
            { onRow: show, key: (v) => String(v.version) },
          ),
        ),
        h(
          "div.panel",
          {},
          h("div.panel-body", {}, h("h2", { text: "Recent sessions" })),
          sessionTable(sessions.data, "This agent has no sessions yet."),
        ),
      ),
      h("div.panel", {}, detail),
    ),
  );
  show(versions[0] || agent);
}

async function newSessionForm(agent) {
  const envs = (await getAll("/v1/environments", { limit: 100 })).filter((e) => !e.archived_at);
  const problem = h("div");
  const env = h("select", { name: "environment" }, envs.map((e) => h("option", { value: e.id, text: e.name })));
  const title = h("input", { type: "text", name: "title", placeholder: "Title (optional)" });
  const button = h("button.btn.primary", { type: "submit", text: "Start a session", disabled: !envs.length });
  return h(
    "form.new-session",
    {
      id: "new-session",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        try {
          const body = { agent: agent.id, environment_id: env.value, ...(title.value.trim() ? { title: title.value.trim() } : {}) };
          const session = await post("/v1/sessions", body);
          go(`#/sessions/${session.id}`);
        } catch (error) {
          replace(problem, errorBox(error));
          button.disabled = false;
        }
      },
    },
    envs.length ? env : h("span.small.muted", { text: "No environment to run in yet" }),
    title,
    button,
    problem,
  );
}

// --- environments ---------------------------------------------------------------------------

function packagesOf(env) {
  const packages = env.config.packages || {};
  return Object.entries(packages)
    .filter(([key, list]) => key !== "type" && Array.isArray(list) && list.length)
    .map(([manager, list]) => `${manager}: ${list.join(" ")}`)
    .join("; ");
}

export async function environmentsPage(root) {
  const envs = await getAll("/v1/environments", { limit: 100, include_archived: true });
  replace(
    root,
    pageHead("Environments", "Where the tools of a session run"),
    h(
      "div.panel",
      { id: "environments" },
      table(
        [
          { title: "Name", render: (e) => [h("strong", { text: e.name }), h("div.small.mono.faint", { text: e.id })] },
          { title: "Type", render: (e) => badge(e.config.type) },
          { title: "Networking", render: (e) => (e.config.networking ? e.config.networking.type : "—") },
          { title: "Packages", render: (e) => h("div.ellipsis.small.mono", { text: packagesOf(e) || "—" }) },
          { title: "Created", render: (e) => [when(e.created_at), e.archived_at && [" ", badge("archived", "archived")]] },
        ],
        envs,
        { onRow: (e) => go(`#/environments/${e.id}`), empty: "No environments yet." },
      ),
    ),
  );
}

export async function environmentPage(root, envId) {
  const [env, sessions] = await Promise.all([
    get(`/v1/environments/${encodeURIComponent(envId)}`),
    get("/v1/sessions", { limit: 100, include_archived: true }),
  ]);
  const own = sessions.data.filter((s) => s.environment_id === env.id).slice(0, 10);
  replace(
    root,
    h("div.crumbs", {}, h("a", { href: "#/environments", text: "Environments" }), " / ", env.id),
    pageHead(env.name, [badge(env.config.type), " ", env.archived_at && badge("archived", "archived")]),
    h(
      "div.grid2",
      {},
      h(
        "div.panel",
        {},
        h("div.panel-body", {}, h("h2", { text: "Recent sessions" })),
        sessionTable(own, "No recent sessions in this environment."),
      ),
      h("div.panel", {}, h("div.panel-body", {}, h("h2", { text: "Configuration" }), json(env))),
    ),
  );
}

// --- sessions -------------------------------------------------------------------------------

function sessionTable(sessions, empty) {
  return table(
    [
      {
        title: "Session",
        render: (s) => [h("strong", { text: s.title || "Untitled" }), h("div.small.mono.faint", { text: s.id })],
      },
      { title: "Status", render: (s) => statusBadge(s) },
      { title: "Agent", render: (s) => [s.agent.name, h("span.faint", { text: ` v${s.agent.version}` })] },
      { title: "Tokens in / out", render: (s) => h("span.mono", { text: `${count(s.usage.input_tokens)} / ${count(s.usage.output_tokens)}` }) },
      { title: "Cost", render: (s) => cost(s.usage.list_cost) },
      { title: "Created", render: (s) => when(s.created_at) },
    ],
    sessions,
    { onRow: (s) => go(`#/sessions/${s.id}`), empty },
  );
}

const STATUSES = ["idle", "running", "rescheduling", "terminated"];

function filterQuery(filters) {
  return {
    "statuses[]": filters.status || undefined,
    agent_id: filters.agent || undefined,
    include_archived: filters.archived === "1" ? "true" : undefined,
    "created_at[gte]": filters.since ? new Date(`${filters.since}T00:00:00`).toISOString() : undefined,
  };
}

export async function sessionsPage(root, params) {
  const filters = Object.fromEntries(params.entries());
  const agents = await getAll("/v1/agents", { limit: 100, include_archived: true });
  const list = h("div", { id: "session-list" });
  const more = h("div.more");
  const apply = (changes) => {
    const next = new URLSearchParams({ ...filters, ...changes });
    for (const [key, value] of [...next.entries()]) if (!value) next.delete(key);
    go(`#/sessions${next.toString() ? `?${next}` : ""}`);
  };
  const select = (name, options, label) =>
    h(
      "label.field",
      {},
      label,
      h(
        "select",
        { name, onchange: (e) => apply({ [name]: e.target.value }) },
        options.map(([value, text]) => h("option", { value, text, selected: (filters[name] || "") === value })),
      ),
    );
  const bar = h(
    "div.filters",
    { id: "session-filters" },
    select("status", [["", "Any status"], ...STATUSES.map((s) => [s, s])], "Status"),
    select("agent", [["", "Any agent"], ...agents.map((a) => [a.id, a.name])], "Agent"),
    h(
      "label.field",
      {},
      "Created since",
      h("input", { type: "date", name: "since", value: filters.since || "", onchange: (e) => apply({ since: e.target.value }) }),
    ),
    h(
      "label.field.check",
      {},
      h("input", {
        type: "checkbox",
        name: "archived",
        checked: filters.archived === "1",
        onchange: (e) => apply({ archived: e.target.checked ? "1" : "" }),
      }),
      "Include archived",
    ),
  );
  replace(root, pageHead("Sessions", "Newest first"), h("div.panel", {}, bar, list, more));
  const shown = [];
  const load = async (page) => {
    const result = await get("/v1/sessions", { ...filterQuery(filters), limit: 25, page });
    shown.push(...result.data);
    replace(list, sessionTable(shown, "No sessions match these filters."));
    replace(
      more,
      result.next_page
        ? h("button.btn", { id: "load-more", text: "Load more", onclick: () => load(result.next_page).catch((e) => replace(more, errorBox(e))) })
        : shown.length
          ? h("span.small.faint", { text: `${shown.length} session${shown.length === 1 ? "" : "s"}` })
          : null,
    );
  };
  await load();
}
