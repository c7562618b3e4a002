// Numbers, sizes, times and plans in words.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export function money(amount, currency = "USD") {
  const format = (n) => new Intl.NumberFormat(undefined, { style: "currency", currency, maximumFractionDigits: 2 }).format(n);
  // A few MiB cost a fraction of a cent: say so rather than show nothing.
  return amount > 0 && amount < 0.01 ? `< ${format(0.01)}` : format(amount || 0);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function time(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** "3 minutes ago", "in 2 hours". */
export function relative(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
    [Infinity, "year"],
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return relativeFormat.format(Math.round(value), unit);
    value /= size;
  }
  return "";
}
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function duration(startIso, endIso) {
  if (!startIso || !endIso) return "—";
  const seconds = Math.max(0, Math.round((new Date(endIso) - new Date(startIso)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

const PLAN_NAMES = {
  hourly: "Hourly",
  intra_daily_2h: "Every 2 hours",
  intra_daily_4h: "Every 4 hours",
  intra_daily_6h: "Every 6 hours",
  intra_daily_12h: "Every 12 hours",
  daily: "Daily",
  weekly: "Weekly",
  monthly: "Monthly",
  cron: "Cron",
};
const WEEKDAYS = { SUN: "Sunday", MON: "Monday", TUE: "Tuesday", WED: "Wednesday", THU: "Thursday", FRI: "Friday", SAT: "Saturday" };

export function planName(plan) {
  return PLAN_NAMES[plan] || plan;
}

/** "Daily at 04:00 Europe/Paris", "Weekly on Sunday at 00:00 UTC", "Cron 30 3 * * 0". */
export function plan(policy) {
  if (!policy) return "—";
  const zone = policy.time_zone || "UTC";
  const at = policy.hour === null || policy.hour === undefined ? "" : ` at ${String(policy.hour).padStart(2, "0")}:00`;
  switch (policy.plan) {
    case "cron":
      return `Cron ${policy.cron} ${zone}`;
    case "weekly":
      return `Weekly on ${WEEKDAYS[policy.weekday] || policy.weekday}${at} ${zone}`;
    case "monthly":
      return `Monthly on day ${policy.day_of_month}${at} ${zone}`;
    case "daily":
      return `Daily${at} ${zone}`;
    default:
      return `${planName(policy.plan)} ${zone}`;
  }
}

/** "7 daily, 4 weekly, 12 monthly" or "7 days". */
export function retention(policy) {
  if (!policy) return "—";
  const counts = ["hourly", "daily", "weekly", "monthly", "yearly"]
    .filter((tag) => policy[`keep_${tag}`] > 0)
    .map((tag) => `${policy[`keep_${tag}`]} ${tag}`);
  if (policy.retention_period_days) counts.push(`all from the last ${policy.retention_period_days} days`);
  return counts.length ? counts.join(", ") : "—";
}

export function percent(n) {
  return `${Math.round(n)}%`;
}
