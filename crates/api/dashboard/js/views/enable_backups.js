// Enable backups, the SnapShooter flow: schedule (frequency, time, time zone) → retention, with
// the simulator showing which backups will exist and what they cost → replication regions →
// Start Backups. It sends one enable_backups (or change_backup_policy) action.

import { api } from "../api.js";
import { field, h, mount, select, table } from "../dom.js";
import { bytes, money, plan as planText, plural, retention as retentionText, time } from "../format.js";
import { followAction } from "../live.js";

const FREQUENCIES = [
  ["hourly", "Every hour"],
  ["intra_daily_2h", "Every 2 hours"],
  ["intra_daily_4h", "Every 4 hours"],
  ["intra_daily_6h", "Every 6 hours"],
  ["intra_daily_12h", "Every 12 hours"],
  ["daily", "Daily"],
  ["weekly", "Weekly"],
  ["monthly", "Monthly"],
  ["cron", "Custom (cron expression)"],
];
const SUB_DAILY = new Set(["hourly", "intra_daily_2h", "intra_daily_4h", "intra_daily_6h", "intra_daily_12h"]);
const WINDOWS = [0, 4, 8, 12, 16, 20].map((hour) => [hour, `${String(hour).padStart(2, "0")}:00 – ${String((hour + 4) % 24).padStart(2, "0")}:00`]);
const WEEKDAYS = [["SUN", "Sunday"], ["MON", "Monday"], ["TUE", "Tuesday"], ["WED", "Wednesday"], ["THU", "Thursday"], ["FRI", "Friday"], ["SAT", "Saturday"]];
const KEEPS = ["hourly", "daily", "weekly", "monthly", "yearly"];
/** SnapShooter's suggestion. */
const SUGGESTED = { keep_hourly: 0, keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: 0 };
const STEPS = ["Schedule", "Retention", "Replication"];
const SIMULATED_DAYS = 400;
const SIMULATION_ROWS_MAX = 40;
const SIMULATE_DELAY_MS = 250;

export async function render(root, kind, id) {
  const one = kind === "droplets" ? "droplet" : "volume";
  const [resource, regions] = await Promise.all([api.get(`/v2/${kind}/${id}`).then((r) => r[one]), api.all("/v2/regions", "regions")]);
  document.title = `Backups of ${resource.name} · drydock`;
  const enabled = kind === "droplets" ? resource.features.includes("backups") : resource.drydock.backups_enabled;
  const current = resource.drydock.backup_policy;
  const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const policy = {
    plan: current?.plan || "daily",
    hour: current?.hour ?? 0,
    weekday: current?.weekday || "SUN",
    day_of_month: current?.day_of_month ?? 1,
    cron: current?.cron || "30 3 * * *",
    time_zone: current?.time_zone || localZone,
    ...SUGGESTED,
    ...(current ? Object.fromEntries(KEEPS.map((k) => [`keep_${k}`, current[`keep_${k}`] ?? 0])) : {}),
    replication_regions: current?.replication_regions || [],
  };
  const state = { step: 0, policy, resource, kind, one, regions, enabled };
  const body = h("div");
  mount(
    root,
    h("p", { class: "crumbs" }, h("a", { href: `#/${kind}` }, kind === "droplets" ? "Droplets" : "Volumes"), " / ", h("a", { href: `#/${kind}/${id}` }, resource.name), " / Backups"),
    h("h1", null, enabled ? `Change the backup plan of ${resource.name}` : `Enable backups of ${resource.name}`),
    body,
  );
  drawStep(body, state);
}

/** The policy as the API takes it: only the fields its plan uses. */
function requestPolicy(p) {
  const out = { plan: p.plan, time_zone: p.time_zone, replication_regions: p.replication_regions };
  if (p.plan === "cron") out.cron = p.cron;
  if (["daily", "weekly", "monthly"].includes(p.plan)) out.hour = Number(p.hour);
  if (p.plan === "weekly") out.weekday = p.weekday;
  if (p.plan === "monthly") out.day_of_month = Number(p.day_of_month);
  for (const k of KEEPS) out[`keep_${k}`] = Number(p[`keep_${k}`]) || 0;
  if (!SUB_DAILY.has(p.plan)) out.keep_hourly = 0;
  return out;
}

function drawStep(body, state) {
  const steps = h(
    "ol",
    { class: "steps", "aria-label": "Steps" },
    STEPS.map((name, i) => h("li", { "aria-current": i === state.step ? "step" : null }, `${i + 1}. ${name}`)),
  );
  const error = h("p", { class: "error", role: "alert" });
  const next = () => {
    state.step += 1;
    drawStep(body, state);
  };
  const back = h("button", { type: "button", class: "secondary", onclick: () => { state.step -= 1; drawStep(body, state); } }, "Back");
  const panels = [scheduleStep, retentionStep, replicationStep];
  const { content, submit } = panels[state.step](state, error, next);
  const form = h(
    "form",
    { onsubmit: (event) => { event.preventDefault(); submit(); } },
    content,
    error,
    h(
      "div",
      { class: "buttons" },
      state.step > 0 ? back : h("a", { class: "button secondary", href: `#/${state.kind}/${state.resource.id}` }, "Cancel"),
      h("button", { type: "submit" }, state.step === STEPS.length - 1 ? (state.enabled ? "Save plan" : "Start Backups") : "Next"),
    ),
  );
  mount(body, steps, form);
  form.querySelector("input, select")?.focus();
}

function scheduleStep(state, error, next) {
  const p = state.policy;
  const frequency = select("plan", FREQUENCIES, p.plan);
  const hour = select("hour", WINDOWS, p.hour);
  const weekday = select("weekday", WEEKDAYS, p.weekday);
  const day = h("input", { type: "number", name: "day_of_month", min: 1, max: 31, value: p.day_of_month });
  const cron = h("input", { type: "text", name: "cron", value: p.cron, spellcheck: false });
  const zones = Intl.supportedValuesOf ? ["UTC", ...Intl.supportedValuesOf("timeZone").filter((z) => z !== "UTC")] : ["UTC"];
  if (!zones.includes(p.time_zone)) zones.unshift(p.time_zone);
  const zone = select("time_zone", zones.map((z) => [z, z]), p.time_zone);
  const fields = {
    hour: field("Time", hour, "The backup window: each backup starts inside it, at a moment spread per machine."),
    weekday: field("Day of the week", weekday),
    day: field("Day of the month", day, "A shorter month uses its last day."),
    cron: field("Cron expression", cron, "Five fields in the chosen time zone, e.g. 30 3 * * 0,4 (03:30 on Sundays and Thursdays)."),
  };
  const show = () => {
    const plan = frequency.value;
    fields.hour.hidden = !["daily", "weekly", "monthly"].includes(plan);
    fields.weekday.hidden = plan !== "weekly";
    fields.day.hidden = plan !== "monthly";
    fields.cron.hidden = plan !== "cron";
  };
  frequency.addEventListener("change", show);
  show();
  return {
    content: [h("h2", null, "When should backups run?"), field("Frequency", frequency), fields.hour, fields.weekday, fields.day, fields.cron, field("Time zone", zone, "Days, weeks and months are counted in it.")],
    submit: () => {
      Object.assign(p, { plan: frequency.value, hour: Number(hour.value), weekday: weekday.value, day_of_month: Number(day.value), cron: cron.value.trim(), time_zone: zone.value });
      if (!SUB_DAILY.has(p.plan)) p.keep_hourly = 0;
      else if (!p.keep_hourly) p.keep_hourly = 24;
      next();
    },
  };
}

function retentionStep(state, error, next) {
  const p = state.policy;
  const inputs = Object.fromEntries(
    KEEPS.map((k) => [k, h("input", { type: "number", name: `keep_${k}`, min: 0, max: 10000, value: p[`keep_${k}`] })]),
  );
  const dataBytes = state.resource.drydock.disk.size_bytes;
  const change = h("input", { type: "number", name: "change", min: 0, max: 100, step: 0.5, value: 2 });
  const result = h("div", { "aria-live": "polite" });
  let timer = null;
  let generation = 0;
  const simulate = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      for (const k of KEEPS) p[`keep_${k}`] = Number(inputs[k].value) || 0;
      generation += 1;
      const mine = generation;
      try {
        const answer = await api.post("/drydock/v1/retention/simulate", {
          policy: requestPolicy(p),
          days: SIMULATED_DAYS,
          data_bytes: dataBytes,
          change_per_backup: (Number(change.value) || 0) / 100,
        });
        if (mine === generation) mount(result, simulation(answer, dataBytes));
      } catch (e) {
        if (mine === generation) mount(result, h("p", { class: "error" }, e.message));
      }
    }, SIMULATE_DELAY_MS);
  };
  for (const input of [...Object.values(inputs), change]) input.addEventListener("input", simulate);
  simulate();
  const keepFields = KEEPS.filter((k) => k !== "hourly" || SUB_DAILY.has(p.plan)).map((k) => field(`Keep ${k} backups`, inputs[k]));
  return {
    content: [
      h("h2", null, "How long should backups be kept?"),
      h("p", { class: "muted" }, `${planText(requestPolicy(p))}. Each backup is tagged when taken (daily: the first of its day, weekly: of its week, monthly: of its month) and kept while it is among the newest of one of its tags. Suggested: 7 daily, 4 weekly, 12 monthly.`),
      h("div", { class: "cards" }, h("div", null, keepFields), h("div", null, field("Data changed between backups (%)", change, `Of ${bytes(dataBytes)}: used only for the estimate.`))),
      h("h3", null, `After ${SIMULATED_DAYS} days of this plan`),
      result,
    ],
    submit: () => {
      for (const k of KEEPS) p[`keep_${k}`] = Number(inputs[k].value) || 0;
      if (KEEPS.every((k) => !p[`keep_${k}`])) {
        error.textContent = "Keep at least one backup of some kind.";
        return;
      }
      next();
    },
  };
}

function simulation(answer, dataBytes) {
  const s = answer.simulation;
  const e = answer.estimate;
  // In the policy's time zone: the one its days, weeks and months are counted in.
  const zone = answer.policy.time_zone;
  const rows = s.backups.slice(-SIMULATION_ROWS_MAX).reverse().map((b) =>
    h("tr", null, h("td", null, time(b.taken_at, zone)), h("td", null, b.tags.map((t) => h("span", { class: "tag" }, t))), h("td", null, b.reasons.join("; "))),
  );
  return [
    h(
      "p",
      { class: "notice" },
      h("strong", null, `${plural(s.kept, "backup")} kept`),
      ` of ${s.taken} taken (${s.pruned} pruned). About ${bytes(e.stored_bytes)} stored for ${bytes(dataBytes)} of data: `,
      h("strong", null, `${money(e.monthly_cost, e.currency)} a month`),
      ".",
    ),
    table(["Taken", "Tags", "Kept because"], rows, "Backups that exist at the end of the simulation"),
    s.kept > SIMULATION_ROWS_MAX ? h("p", { class: "muted" }, `and ${s.kept - SIMULATION_ROWS_MAX} older ones.`) : null,
  ];
}

function replicationStep(state, error) {
  const p = state.policy;
  const home = state.resource.region.slug;
  const others = state.regions.filter((r) => r.slug !== home);
  const boxes = others.map((r) =>
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "replication", value: r.slug, checked: p.replication_regions.includes(r.slug), disabled: !r.available }), `${r.name} (${r.slug})${r.available ? "" : ", unavailable"}`),
  );
  const summary = h("dl", { class: "facts" },
    h("dt", null, "Frequency"), h("dd", null, planText(requestPolicy(p))),
    h("dt", null, "Retention"), h("dd", null, retentionText(requestPolicy(p))),
    h("dt", null, "Stored in"), h("dd", null, home));
  return {
    content: [
      h("h2", null, "Where should copies be kept?"),
      h("p", { class: "muted" }, `Backups are stored in ${home}. Each one can also be copied to other regions, sending only the data they lack.`),
      others.length
        ? h("fieldset", null, h("legend", null, "Replication regions"), boxes)
        : h("p", null, "This server has one region: add regions to its configuration to keep copies elsewhere."),
      h("h3", null, "Summary"),
      summary,
    ],
    submit: async () => {
      p.replication_regions = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      const form = error.closest("form");
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      error.textContent = "";
      try {
        const type = state.enabled ? "change_backup_policy" : "enable_backups";
        const action = await api.action(`/v2/${state.kind}/${state.resource.id}/actions`, { type, backup_policy: requestPolicy(p) });
        const done = await followAction(form, action, state.enabled ? "Saving the backup plan" : "Starting backups");
        if (done.status !== "completed") throw new Error(done.drydock?.error || `the action ended ${done.status}`);
        location.hash = `#/${state.kind}/${state.resource.id}`;
      } catch (e) {
        error.textContent = e.message;
        button.disabled = false;
      }
    },
  };
}

