// Building the page: a small element helper, form fields with their labels, the confirmation
// dialog and the notices. Text is always set as text, never as HTML.

let nextId = 0;

/** h("a", {href, class, onclick, "aria-label"}, child, [children], null) → element. */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    // Properties (value, disabled, spellcheck…) take false too; attributes are left out.
    else if (key in node && !key.includes("-")) node[key] = value;
    else if (value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces everything in `node` with `children`. */
export function mount(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled control: the label names it, the hint describes it. */
export function field(labelText, control, hint) {
  control.id ||= uid("field");
  const parts = [h("label", { for: control.id }, labelText), control];
  if (hint) {
    const hintId = uid("hint");
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([optionValue, text]) => h("option", { value: optionValue, selected: String(optionValue) === String(value) }, text)),
  );
}

export function table(headers, rows, caption) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      null,
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", null, h("tr", null, headers.map((th) => (typeof th === "string" ? h("th", { scope: "col" }, th) : th)))),
      h("tbody", null, rows),
    ),
  );
}

export function statusBadge(status, text) {
  return h("span", { class: `status ${status}` }, text || status);
}

/** Asks before anything destructive; resolves true only when the user confirms. */
export function confirm({ title, body, action }) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-body").textContent = body;
  document.getElementById("confirm-ok").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

/** A notice in the corner that goes away by itself; errors stay longer. */
export function toast(message, bad = false) {
  const note = h("div", { class: bad ? "toast bad" : "toast" }, message);
  document.getElementById("toasts").append(note);
  setTimeout(() => note.remove(), bad ? 10000 : 5000);
}

/** An error in words, where the view would have been. */
export function errorNotice(error) {
  return h("div", { class: "notice bad", role: "alert" }, h("strong", null, "Something went wrong. "), error.message);
}

/** Runs `work` with `button` disabled, showing what failed in words. */
export async function busy(button, work) {
  button.disabled = true;
  try {
    return await work();
  } catch (error) {
    toast(error.message, true);
    return undefined;
  } finally {
    button.disabled = false;
  }
}

/**
 * A small form in a modal dialog: `fields` are [name, label, control, hint]; resolves with
 * {name: value} when submitted, or null when cancelled.
 */
export function ask({ title, fields, action }) {
  const controls = fields.map(([name, labelText, control, hint]) => {
    control.name = name;
    return [name, control, field(labelText, control, hint)];
  });
  const titleId = uid("ask");
  const submit = h("button", { type: "submit", value: "ok" }, action);
  const dialog = h(
    "dialog",
    { "aria-labelledby": titleId },
    h(
      "form",
      { method: "dialog" },
      h("h2", { id: titleId }, title),
      controls.map(([, , wrapper]) => wrapper),
      h("div", { class: "buttons" }, h("button", { type: "button", class: "secondary", onclick: () => dialog.close("cancel") }, "Cancel"), submit),
    ),
  );
  document.body.append(dialog);
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        dialog.remove();
        if (dialog.returnValue !== "ok") return resolve(null);
        resolve(Object.fromEntries(controls.map(([name, control]) => [name, control.value.trim()])));
      },
      { once: true },
    );
  });
}

/** A button for what cannot be undone: it asks `question` ({title, body, action}) first. */
export function confirmedButton(text, question, work, props = {}) {
  const onclick = (event) =>
    busy(event.currentTarget, async () => {
      if (await confirm(question)) await work();
    });
  return h("button", { type: "button", class: "danger secondary", ...props, onclick }, text);
}
