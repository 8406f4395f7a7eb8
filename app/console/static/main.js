// The console's shell: sign-in, navigation and the hash router (#/agents, #/sessions/ID, ...).
// Routes carry ids and filters only, never the API key.

import { auth, get } from "./api.js";
import { errorBox, h, replace } from "./ui.js";
import { agentPage, agentsPage, environmentPage, environmentsPage, sessionsPage } from "./views.js";
import { sessionPage } from "./session.js";

const app = document.getElementById("app");
let leave = null; // the current page's clean-up (a live stream to close)

const ROUTES = [
  [/^\/agents$/, (root) => agentsPage(root)],
  [/^\/agents\/([^/]+)$/, (root, [id]) => agentPage(root, id)],
  [/^\/environments$/, (root) => environmentsPage(root)],
  [/^\/environments\/([^/]+)$/, (root, [id]) => environmentPage(root, id)],
  [/^\/sessions$/, (root, _, params) => sessionsPage(root, params)],
  [/^\/sessions\/([^/]+)$/, (root, [id]) => sessionPage(root, id)],
];

function signIn(message) {
  leave?.();
  leave = null;
  app.dataset.state = "signed-out";
  const key = h("input", {
    type: "password",
    name: "api-key",
    id: "api-key",
    placeholder: "sk-…",
    autocomplete: "current-password",
    required: true,
  });
  const problem = h("div");
  const button = h("button.btn.primary", { type: "submit", text: "Sign in" });
  const form = h(
    "form",
    {
      id: "sign-in",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        auth.set(key.value.trim());
        try {
          await get("/v1/agents", { limit: 1 });
          route();
        } catch (error) {
          auth.clear();
          replace(problem, errorBox(error.status === 401 ? new Error("That API key was not accepted.") : error));
          button.disabled = false;
        }
      },
    },
    h("div.brand", {}, h("img", { src: "/console/assets/favicon.svg", alt: "" }), h("div", {}, "mas console", h("small", { text: "Managed Agents Server" }))),
    h("p", { text: "Sign in with an API key of this server. It is kept in this tab only (sessionStorage) and sent in a header, never in a URL." }),
    message && errorBox(new Error(message)),
    h("label.field", { for: "api-key" }, "API key", key),
    problem,
    button,
  );
  replace(app, h("div.signin", {}, form));
  key.focus();
}

function shell() {
  const section = (location.hash.split("/")[1] || "sessions").split("?")[0];
  const link = (name, label) => h(`a${section === name ? ".active" : ""}`, { href: `#/${name}`, text: label });
  const main = h("main.main", { id: "page" });
  replace(
    app,
    h(
      "nav.side",
      {},
      h("div.brand", {}, h("img", { src: "/console/assets/favicon.svg", alt: "" }), h("div", {}, "mas", h("small", { text: "console" }))),
      h("div.nav", {}, link("sessions", "Sessions"), link("agents", "Agents"), link("environments", "Environments")),
      h("div.spacer"),
      h(
        "div.who",
        {},
        h("div", { text: `Signed in (key …${(auth.key() || "").slice(-4)})` }),
        h("button.btn.ghost", {
          id: "sign-out",
          text: "Sign out",
          onclick: () => {
            auth.clear();
            signIn();
          },
        }),
      ),
    ),
    main,
  );
  app.dataset.state = "signed-in";
  return main;
}

async function route() {
  if (!auth.key()) return signIn();
  leave?.();
  leave = null;
  const [path, search] = (location.hash.slice(1) || "/sessions").split("?");
  const match = ROUTES.map(([pattern, page]) => [path.match(pattern), page]).find(([m]) => m);
  const main = shell();
  if (!match) {
    replace(main, errorBox(new Error(`No page at ${path}`)));
    return;
  }
  const [groups, page] = match;
  main.dataset.loading = "true";
  try {
    const params = [...groups.slice(1)].map(decodeURIComponent);
    leave = (await page(main, params, new URLSearchParams(search || ""))) || null;
  } catch (error) {
    if (error.status === 401) return;
    replace(main, errorBox(error));
  } finally {
    delete main.dataset.loading;
  }
}

window.addEventListener("mas:unauthorized", () => {
  if (app.dataset.state !== "signed-out") {
    auth.clear();
    signIn("The API key is no longer accepted. Sign in again.");
  }
});
window.addEventListener("hashchange", route);
route();
