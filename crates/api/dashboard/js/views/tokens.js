// API tokens: create with scopes (the secret is shown once), list, revoke.

import { api } from "../api.js";
import { busy, confirmedButton, field, h, mount, select, table, toast } from "../dom.js";
import { time } from "../format.js";

const PRESETS = [
  ["*", "Full access"],
  ["read", "Read only"],
  ["droplet:read,image:create,droplet:admin", "Snapshots and restores of droplets"],
  ["custom", "Custom scopes…"],
];

export async function render(root) {
  document.title = "API tokens · drydock";
  const created = h("div", { "aria-live": "polite" });
  const list = h("div");
  const refresh = async () => {
    const { tokens } = await api.get("/drydock/v1/tokens");
    mount(list, tokensTable(tokens, refresh));
  };
  mount(
    root,
    h("div", { class: "head" }, h("div", null, h("h1", null, "API tokens"), h("p", { class: "muted" }, "Tokens sign in to this dashboard, the drydock CLI, pydo, doctl or curl. Scopes are DigitalOcean's: droplet:read, image:create, …"))),
    createForm(created, refresh),
    created,
    h("h2", null, "Tokens"),
    list,
  );
  await refresh();
}

function createForm(created, refresh) {
  const name = h("input", { type: "text", name: "name", required: true, maxLength: 128, autocomplete: "off" });
  const preset = select("preset", PRESETS, "read");
  const custom = h("input", { type: "text", name: "scopes", spellcheck: false, placeholder: "droplet:read, image:*" });
  const customField = field("Scopes", custom, "Separated by commas or spaces: <resource>:<verb>, resource:*, read, or *.");
  customField.hidden = true;
  preset.addEventListener("change", () => {
    customField.hidden = preset.value !== "custom";
    custom.required = preset.value === "custom";
  });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Create token");
  return h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        const scopes = (preset.value === "custom" ? custom.value : preset.value).split(/[\s,]+/).filter(Boolean);
        await busy(submit, async () => {
          try {
            const { token } = await api.post("/drydock/v1/tokens", { name: name.value.trim(), scopes });
            mount(created, secretNotice(token));
            name.value = "";
            await refresh();
          } catch (e) {
            error.textContent = e.message;
          }
        });
      },
    },
    h("h2", null, "Create a token"),
    field("Name", name, "What it is for, e.g. ci-snapshots."),
    field("Access", preset),
    customField,
    error,
    h("div", { class: "buttons" }, submit),
  );
}

function secretNotice(token) {
  const secret = h("input", { type: "text", readOnly: true, value: token.secret, class: "mono", "aria-label": `Secret of token ${token.name}` });
  return h(
    "div",
    { class: "notice", role: "status" },
    h("p", null, h("strong", null, `Token ${token.name} created. `), "Copy its secret now: it is not shown again."),
    secret,
    h("div", { class: "buttons" }, h("button", {
      type: "button",
      class: "secondary",
      onclick: async () => {
        secret.select();
        try {
          await navigator.clipboard.writeText(token.secret);
          toast("Copied.");
        } catch {
          toast("Select the secret and copy it with Ctrl+C.");
        }
      },
    }, "Copy secret")),
  );
}

function tokensTable(tokens, refresh) {
  const rows = tokens.map((t) =>
    h(
      "tr",
      null,
      h("td", null, t.name),
      h("td", null, t.scopes.map((s) => h("span", { class: "tag mono" }, s))),
      h("td", null, time(t.created_at)),
      h(
        "td",
        null,
        confirmedButton(
          "Revoke",
          {
            title: `Revoke token ${t.name}?`,
            body: "Every client using it is refused from now on. If it is the token you signed in with, you are signed out.",
            action: "Revoke token",
          },
          async () => {
            await api.delete(`/drydock/v1/tokens/${t.id}`);
            toast(`Token ${t.name} revoked.`);
            await refresh();
          },
          { "aria-label": `Revoke token ${t.name}` },
        ),
      ),
    ),
  );
  return tokens.length ? table(["Name", "Scopes", "Created", "Actions"], rows, "API tokens") : h("p", { class: "empty" }, "No tokens.");
}
