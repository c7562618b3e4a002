// Signing in: the token is checked against /v2/account before it is kept.

import { api, session } from "../api.js";
import { field, h, mount } from "../dom.js";

export function render(root, message, onSignedIn) {
  document.title = "Sign in · drydock";
  const token = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true, spellcheck: false });
  const remember = h("input", { type: "checkbox", name: "remember" });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        error.textContent = "";
        try {
          const secret = token.value.trim();
          await api.account(secret);
          session.signIn(secret, remember.checked);
          onSignedIn();
        } catch (e) {
          error.textContent = e.status === 401 ? "This token is not valid: check it, or create a new one." : e.message;
          submit.disabled = false;
          token.focus();
        }
      },
    },
    h("h1", null, "Sign in to drydock"),
    message ? h("p", { class: "notice" }, message) : null,
    field("API token", token, "A token starting with dop_v1_. Create one on the server with: drydock token create --scopes '*'"),
    h("label", { class: "inline" }, remember, "Stay signed in on this browser"),
    error,
    h("div", { class: "buttons" }, submit),
  );
  mount(root, form);
  token.focus();
}
