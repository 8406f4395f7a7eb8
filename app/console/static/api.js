// The console's client of the mas API. The API key lives in sessionStorage (gone when the tab
// closes) and travels only in the `x-api-key` header: never in a URL, so it is not in the
// history, the server's access log or a Referer.

const KEY_ITEM = "mas.console.apiKey";
const HEADERS = {
  "anthropic-version": "2023-06-01",
  "anthropic-beta": "managed-agents-2026-04-01",
};

export class ApiError extends Error {
  constructor(status, type, message, requestId) {
    super(message);
    this.status = status;
    this.type = type;
    this.requestId = requestId;
  }
}

export const auth = {
  key: () => sessionStorage.getItem(KEY_ITEM),
  set: (key) => sessionStorage.setItem(KEY_ITEM, key),
  clear: () => sessionStorage.removeItem(KEY_ITEM),
};

function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(name, String(item));
  }
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

function headers(extra) {
  return { ...HEADERS, "x-api-key": auth.key() || "", ...extra };
}

async function failure(response) {
  let type = "api_error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      type = body.error.type || type;
      message = body.error.message || message;
    }
  } catch {
    // not the error envelope: keep the status line
  }
  return new ApiError(response.status, type, message, response.headers.get("request-id"));
}

export async function request(method, path, { query, body, signal } = {}) {
  const init = { method, headers: headers(body ? { "content-type": "application/json" } : {}), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(url(path, query), init);
  if (response.status === 401) window.dispatchEvent(new CustomEvent("mas:unauthorized"));
  if (!response.ok) throw await failure(response);
  return response.json();
}

export const get = (path, query, signal) => request("GET", path, { query, signal });
export const post = (path, body) => request("POST", path, { body });

/** Every page of a list endpoint that pages with `page` / `next_page`, up to `max` items. */
export async function getAll(path, query, max = 5000) {
  const items = [];
  let page;
  do {
    const result = await get(path, { ...query, page });
    items.push(...result.data);
    page = result.next_page;
  } while (page && items.length < max);
  return items;
}

/** Server-sent events over fetch (EventSource cannot send headers): yields {event, id, data}. */
export async function* sse(response, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const abort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", abort, { once: true });
  let buffer = "";
  let frame = { event: "message", id: null, data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, cut);
        buffer = buffer.slice(cut + (buffer.startsWith("\r\n", cut) ? 2 : 1));
        if (line === "") {
          if (frame.data.length) yield { event: frame.event, id: frame.id, data: frame.data.join("\n") };
          frame = { event: "message", id: null, data: [] };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") frame.data.push(text);
          else if (field === "event") frame.event = text;
          else if (field === "id") frame.id = text;
        }
      }
    }
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}

/**
 * Follow a session's events live. `after` is the id of the last event already shown (from the
 * listed history): the stream resumes exactly after it (`Last-Event-ID`), and again after the
 * last event received whenever the connection drops. It is an observer stream: it never takes a
 * turn's replay away from a client that sends and then streams.
 */
export function follow(sessionId, { after, onEvent, onState }) {
  const controller = new AbortController();
  let last = after;
  let delay = 500;
  const path = url(`/v1/sessions/${encodeURIComponent(sessionId)}/events/stream`, {
    "event_deltas[]": ["agent.message", "agent.thinking"],
  });
  (async () => {
    while (!controller.signal.aborted) {
      try {
        // An observer: watching never moves the session's replay watermark (README: the replay rule).
        const extra = { accept: "text/event-stream", "x-mas-observer": "1" };
        if (last) extra["last-event-id"] = last;
        const response = await fetch(path, { headers: headers(extra), signal: controller.signal });
        if (!response.ok) throw await failure(response);
        onState("live");
        delay = 500;
        for await (const frame of sse(response, controller.signal)) {
          const event = JSON.parse(frame.data);
          if (frame.id) last = frame.id;
          onEvent(event);
          if (event.type === "session.deleted") {
            onState("closed");
            return;
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && error.status < 500 && error.status !== 429) {
          onState("closed", error);
          return;
        }
      }
      if (controller.signal.aborted) return;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 8000);
    }
  })();
  return () => controller.abort();
}
