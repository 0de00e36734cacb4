// The sandbox console: a chat per customer (with the flows they filled: each screen, its fields
// and answers, the endpoint's answers), the webhooks with the receiver's answers, limit hits,
// faults, chaos and the flows endpoint's health. Live over server-sent events (/_sandbox/events); steers the sandbox through
// its own /_sandbox/ routes. Plain JS, no build step.
"use strict";

const API = "/_sandbox";
const RANK = { sent: 1, delivered: 2, read: 3, played: 4 };
const TICKS = { sent: "✓", delivered: "✓✓", read: "✓✓", played: "✓✓", failed: "✗" };

const chats = new Map(); // wa_id -> [message record]
const byWamid = new Map(); // wamid -> message record
const customers = new Map(); // wa_id -> name
let selected = null;
let clock = { offset_s: 0, frozen: false, now: Date.now() / 1000, seenAt: Date.now() / 1000 };

const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function call(method, path, body) {
  const response = await fetch(API + path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

// --- state and customers ----------------------------------------------------------------------

async function loadState() {
  const state = await call("GET", "/state");
  const business = state.businesses[0];
  $("#business").textContent = `${business.display_phone_number} · phone number id ${business.phone_number_id}`;
  $("#webhook-url").textContent = state.webhook_url;
  for (const customer of state.customers) customers.set(customer.wa_id, customer.name);
  clock = { ...clock, now: state.clock.now, offset_s: state.clock.offset_s, seenAt: Date.now() / 1000 };
  if (selected === null && state.customers.length) selected = state.customers[0].wa_id;
  renderCustomers();
  renderChat();
  renderFaults(await call("GET", "/faults"));
  fillChaos(await call("GET", "/chaos"));
}

function renderCustomers() {
  const list = $("#customer-list");
  list.replaceChildren();
  for (const [waId, name] of customers) {
    const count = (chats.get(waId) || []).length;
    list.append(element("li", {
      class: waId === selected ? "selected" : "",
      "data-wa-id": waId,
      onclick: () => { selected = waId; renderCustomers(); renderChat(); },
    }, `${name} `, element("small", {}, `+${waId}`), count ? element("span", { class: "unread" }, ` (${count})`) : ""));
  }
}

// --- messages ---------------------------------------------------------------------------------

function addMessage(direction, event) {
  if (byWamid.has(event.wamid)) return;
  const record = { direction, wamid: event.wamid, waId: event.wa_id, message: event.message, status: null, failure: null, at: event.at };
  byWamid.set(event.wamid, record);
  if (!chats.has(event.wa_id)) chats.set(event.wa_id, []);
  chats.get(event.wa_id).push(record);
  if (!customers.has(event.wa_id)) customers.set(event.wa_id, "Customer");
  renderCustomers();
  if (event.wa_id === selected) appendBubble(record);
}

function mediaUrl(part) {
  return part.id ? `${API}/media/${encodeURIComponent(part.id)}` : part.link;
}

function content(message) {
  const type = message.type;
  const part = message[type] || {};
  switch (type) {
    case "text":
      return [part.body];
    case "image":
    case "sticker":
      return [element("img", { src: mediaUrl(part), alt: part.caption || type }), part.caption || ""];
    case "video":
      return [element("video", { src: mediaUrl(part), controls: "" }), part.caption || ""];
    case "audio":
      return [element("audio", { src: mediaUrl(part), controls: "" })];
    case "document":
      return [element("a", { href: mediaUrl(part), target: "_blank" }, `📄 ${part.filename || "document"}`), part.caption ? `\n${part.caption}` : ""];
    case "interactive":
      return interactive(part);
    case "button":
      return [`[${part.text}]`];
    case "location":
      return [`📍 ${part.name || ""} ${part.latitude}, ${part.longitude}`];
    case "reaction":
      return [`reacted ${part.emoji}`];
    case "template":
      return [`[template ${part.name} (${(part.language || {}).code || ""})]`];
    default:
      return [JSON.stringify(part)];
  }
}

function interactive(part) {
  const reply = part.button_reply || part.list_reply;
  if (reply) return [`[${reply.title}]`];
  if (part.nfm_reply) return [`[flow sent] ${part.nfm_reply.response_json}`];
  if (part.type === "flow") {
    const parameters = (part.action || {}).parameters || {};
    const flow = parameters.flow_id || parameters.flow_name;
    return [(part.body || {}).text || "", element("div", { class: "buttons" },
      element("span", { class: "flow-cta", title: `flow ${flow}, ${parameters.flow_action || "navigate"}` }, `▤ ${parameters.flow_cta}`))];
  }
  const shown = [(part.body || {}).text || ""];
  const buttons = ((part.action || {}).buttons || []).map((button) => button.reply);
  if (buttons.length) {
    shown.push(element("div", { class: "buttons" }, ...buttons.map((choice) =>
      element("button", { type: "button", "data-reply-id": choice.id, onclick: () => replyButton(choice) }, choice.title))));
  }
  for (const section of (part.action || {}).sections || []) {
    for (const row of section.rows || []) shown.push(`\n• ${row.title}`);
  }
  return shown;
}

function bubble(record) {
  if (record.direction === "flow") return flowCard(record);
  const time = new Date(record.at * 1000).toLocaleTimeString();
  const meta = element("div", { class: "meta" }, time);
  if (record.direction === "out") {
    meta.append(element("span", { class: "ticks", "data-status": record.status || "pending" }, record.status ? TICKS[record.status] : "🕓"));
  }
  const node = element("div", { class: `msg ${record.direction}`, "data-wamid": record.wamid, "data-type": record.message.type },
    element("div", { class: "kind" }, record.message.type), ...content(record.message), meta);
  if (record.failure) node.append(element("div", { class: "failure" }, `${record.failure.code} ${record.failure.title}`));
  return node;
}

// --- flows the customers filled ---------------------------------------------------------------

function addFlow(event) {
  const record = { direction: "flow", wamid: `flow-${event.seq}`, waId: event.wa_id, flow: event, at: event.at };
  if (!chats.has(event.wa_id)) chats.set(event.wa_id, []);
  chats.get(event.wa_id).push(record);
  renderCustomers();
  if (event.wa_id === selected) appendBubble(record);
  renderHealth(event);
}

function flowCard(record) {
  const flow = record.flow;
  const card = element("div", { class: "msg flow", "data-flow-id": flow.flow_id, "data-message-id": flow.message_id },
    element("div", { class: "kind" }, `flow ${flow.flow_name} · ${flow.flow_action} · ${flow.mode} · token ${flow.flow_token}`));
  const calls = [...flow.steps];
  if (flow.flow_action === "data_exchange" && calls.length && calls[0].action === "INIT") card.append(callLine(calls.shift()));
  for (const shown of flow.screens) {
    const screen = element("div", { class: "flow-screen", "data-screen": shown.screen },
      element("div", { class: "flow-title" }, shown.title));
    for (const field of shown.fields) {
      const given = shown.answers[field.name];
      screen.append(element("div", { class: "flow-field", "data-field": field.name },
        `${field.label || field.name}${field.required ? "*" : ""} `, element("small", {}, field.type), ": ",
        element("b", {}, given === undefined ? "—" : JSON.stringify(given))));
    }
    screen.append(element("div", { class: "flow-action" }, `→ ${shown.action}`));
    card.append(screen);
    if (shown.action === "data_exchange" && calls.length) card.append(callLine(calls.shift()));
  }
  for (const call of calls) card.append(callLine(call));
  if (flow.error) card.append(element("div", { class: "flow-error" }, `the customer saw an error: ${flow.error}`));
  if (flow.closed_with) card.append(element("div", { class: "flow-closed" }, `closed: ${JSON.stringify(flow.closed_with)}`));
  card.append(element("div", { class: "meta" }, new Date(record.at * 1000).toLocaleTimeString()));
  return card;
}

function callLine(call) {
  const good = call.status === 200;
  const data = (call.answer || {}).data || {};
  const said = call.answer ? (call.answered_screen || JSON.stringify(call.answer)) : "no answer";
  return element("div", { class: `flow-call ${good ? "answer-ok" : "answer-bad"}`, "data-status": call.status },
    `endpoint ${call.action}${call.screen && call.screen !== "(open)" ? " from " + call.screen : ""} → ${call.status || "unreachable"} ${said}`,
    data.error_message ? element("div", { class: "flow-error" }, data.error_message) : "");
}

function renderHealth(event) {
  const health = event.health || {};
  const line = health.requests
    ? `${event.flow_name}: ${health.requests} requests, errors ${(health.error_rate * 100).toFixed(0)}%, ` +
      `p50 ${health.p50_ms} ms, p90 ${health.p90_ms} ms, p99 ${health.p99_ms} ms`
    : `${event.flow_name}: no requests`;
  const item = element("li", { "data-flow-id": event.flow_id, class: health.error_rate ? "answer-bad" : "" }, line);
  const old = document.querySelector(`#flow-health li[data-flow-id="${CSS.escape(event.flow_id)}"]`);
  if (old) old.replaceWith(item); else $("#flow-health").append(item);
}

function appendBubble(record) {
  const messages = $("#messages");
  messages.append(bubble(record));
  messages.scrollTop = messages.scrollHeight;
}

function renderChat() {
  $("#chat-title").textContent = selected ? `${customers.get(selected) || ""} +${selected}` : "Chat";
  $("#messages").replaceChildren(...(chats.get(selected) || []).map(bubble));
}

function applyStatus(status) {
  const record = byWamid.get(status.id);
  if (!record) return;
  if (status.status === "failed") {
    const error = (status.errors || [])[0] || {};
    record.status = "failed";
    record.failure = { code: error.code, title: error.title || error.message || "" };
  } else if (record.status !== "failed" && (RANK[status.status] || 0) > (RANK[record.status] || 0)) {
    record.status = status.status;
  } else {
    return;
  }
  const old = document.querySelector(`.msg[data-wamid="${CSS.escape(record.wamid)}"]`);
  if (old) old.replaceWith(bubble(record));
}

// --- the side panels --------------------------------------------------------------------------

function changesOf(body) {
  const changes = [];
  for (const entry of body.entry || []) for (const change of entry.changes || []) changes.push(change.value || {});
  return changes;
}

function webhookSummary(body) {
  const parts = [];
  for (const value of changesOf(body)) {
    for (const status of value.statuses || []) parts.push(`status ${status.status}${status.errors ? " " + status.errors[0].code : ""}`);
    for (const message of value.messages || []) parts.push(`message ${message.type} from ${message.from}`);
  }
  return parts.join(", ") || "account change";
}

function onWebhook(event) {
  const last = event.attempts[event.attempts.length - 1] || {};
  const answer = last.status !== undefined ? `${last.status}` : last.error || "?";
  const good = last.status === 200;
  const item = element("li", { "data-webhook": event.id }, `#${event.id} ${webhookSummary(event.body)} → `,
    element("span", { class: good ? "answer-ok" : "answer-bad" }, answer),
    event.attempts.length > 1 ? ` (attempt ${event.attempts.length})` : "");
  const old = document.querySelector(`#webhooks li[data-webhook="${event.id}"]`);
  if (old) old.replaceWith(item); else prepend("#webhooks", item);
  if (good) for (const value of changesOf(event.body)) for (const status of value.statuses || []) applyStatus(status);
}

function prepend(list, item) {
  const node = $(list);
  node.prepend(item);
  while (node.children.length > 200) node.lastChild.remove();
}

function onRefused(event) {
  const limit = event.code === 130429 || event.code === 131056;
  prepend("#refusals", element("li", { class: limit ? "limit" : "", "data-code": event.code },
    `${new Date(event.at * 1000).toLocaleTimeString()} ${event.code} ${event.title} (${event.method} ${event.path})`));
}

function onFault(event) {
  const what = event.fault.code ?? event.fault.status ?? (event.fault.hang ? "hang" : event.fault.drop ? "drop" : "latency");
  prepend("#fault-hits", element("li", {}, `${new Date(event.at * 1000).toLocaleTimeString()} ${what} met ${event.path}`));
  renderFaults(event.faults);
}

function renderFaults(faults) {
  $("#faults").replaceChildren(...faults.map((fault) => element("li", {},
    `${fault.endpoint}: ${fault.code ?? fault.status ?? (fault.hang ? "hang" : fault.drop ? "drop" : "latency")}` +
    ` at ${fault.rate}${fault.count ? `, next ${fault.count}` : ""}`)));
}

function fillChaos(chaos) {
  const form = $("#chaos");
  form.delay_min.value = chaos.delay_s[0];
  form.delay_max.value = chaos.delay_s[1];
  form.duplicate_rate.value = chaos.duplicate_rate;
  form.reorder_rate.value = chaos.reorder_rate;
  form.batch_max.value = chaos.batch_max;
}

function onControl(event) {
  if (event.what === "clock") clock = { ...clock, ...event.clock, seenAt: Date.now() / 1000 };
  if (event.what === "faults") renderFaults(event.faults);
  if (event.what === "chaos") fillChaos(event.chaos);
  if (event.what === "reset") {
    chats.clear(); byWamid.clear(); customers.clear(); selected = null;
    for (const list of ["#webhooks", "#refusals", "#fault-hits", "#flow-health"]) $(list).replaceChildren();
    loadState();
  }
}

function tickClock() {
  const now = clock.frozen ? clock.now : clock.now + (Date.now() / 1000 - clock.seenAt);
  $("#clock").textContent = `clock: ${new Date(now * 1000).toLocaleString()}${clock.frozen ? " (frozen)" : ""}`;
  $("#freeze").textContent = clock.frozen ? "thaw" : "freeze";
}

// --- the live feed ----------------------------------------------------------------------------

function connect() {
  const source = new EventSource(`${API}/events`);
  source.onopen = () => { $("#live").className = "up"; $("#live").textContent = "live"; };
  source.onerror = () => { $("#live").className = "down"; $("#live").textContent = "reconnecting…"; };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.kind === "inbound") addMessage("in", event);
    else if (event.kind === "outbound") addMessage("out", event);
    else if (event.kind === "webhook") onWebhook(event);
    else if (event.kind === "refused") onRefused(event);
    else if (event.kind === "fault") onFault(event);
    else if (event.kind === "control") onControl(event);
    else if (event.kind === "flow") addFlow(event);
  };
}

// --- acting as the customer and steering ------------------------------------------------------

async function sendAsCustomer(message) {
  if (!selected) return;
  await call("POST", `/customers/${selected}/messages`, message);
}

function replyButton(choice) {
  sendAsCustomer({ type: "interactive", reply: "button_reply", id: choice.id, title: choice.title });
}

function wire() {
  $("#composer").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const text = $("#text").value.trim();
    if (!text) return;
    $("#text").value = "";
    sendAsCustomer({ type: "text", body: text });
  });
  $("#send-image").addEventListener("click", () => {
    const caption = $("#text").value.trim();
    $("#text").value = "";
    sendAsCustomer(caption ? { type: "image", caption } : { type: "image" });
  });
  $("#send-document").addEventListener("click", () => sendAsCustomer({ type: "document" }));
  $("#add-customer").addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const form = submit.target;
    const customer = await call("POST", "/customers", { wa_id: form.wa_id.value, name: form.name.value || "Customer" });
    customers.set(customer.wa_id, customer.name);
    selected = customer.wa_id;
    form.reset();
    renderCustomers(); renderChat();
  });
  $("#advance-hour").addEventListener("click", () => call("POST", "/clock", { advance_s: 3600 }));
  $("#advance-day").addEventListener("click", () => call("POST", "/clock", { advance_s: 86400 }));
  $("#freeze").addEventListener("click", () => call("POST", "/clock", { freeze: !clock.frozen }));
  $("#reset").addEventListener("click", () => call("POST", "/reset", {}));
  $("#add-fault").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const form = submit.target;
    const fault = { endpoint: form.endpoint.value, rate: Number(form.rate.value || 1) };
    // The flows endpoint is the business's, not Meta's: a number there is an HTTP status.
    if (form.code.value) fault[fault.endpoint === "flows_endpoint" ? "status" : "code"] = Number(form.code.value);
    if (form.count.value) fault.count = Number(form.count.value);
    call("POST", "/faults", fault);
  });
  $("#clear-faults").addEventListener("click", () => call("DELETE", "/faults"));
  $("#chaos").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const form = submit.target;
    call("POST", "/chaos", {
      delay_s: [Number(form.delay_min.value), Number(form.delay_max.value)],
      duplicate_rate: Number(form.duplicate_rate.value),
      reorder_rate: Number(form.reorder_rate.value),
      batch_max: Number(form.batch_max.value),
    });
  });
}

wire();
loadState().then(connect);
setInterval(tickClock, 1000);
tickClock();
