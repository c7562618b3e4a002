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

const pad = (n) => String(n).padStart(2, "0");

/**
 * "2026-12-05 20:25" in the browser's time zone, or in `timeZone` (named) when given. Written out
 * by hand: the first Intl.DateTimeFormat costs ~150 ms of the first screen (ICU's start-up).
 */
export function time(iso, timeZone) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  if (timeZone) {
    const options = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone, timeZoneName: "short" };
    const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", options).formatToParts(date).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${parts.timeZoneName}`;
  }
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

const UNITS_OF_TIME = [
  [60, "second"],
  [60, "minute"],
  [24, "hour"],
  [30, "day"],
  [12, "month"],
  [Infinity, "year"],
];

/** "1 hour", "3 hours". */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** "3 minutes ago", "in 2 hours", "just now". */
export function relative(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = (new Date(iso).getTime() - now) / 1000;
  if (Math.abs(seconds) < 45) return "just now";
  let value = Math.abs(seconds);
  for (const [size, unit] of UNITS_OF_TIME) {
    if (value < size) {
      const words = plural(Math.round(value), unit);
      return seconds < 0 ? `${words} ago` : `in ${words}`;
    }
    value /= size;
  }
  return "";
}

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
  if (policy.retention_period_days) counts.push(`all from the last ${plural(policy.retention_period_days, "day")}`);
  return counts.length ? counts.join(", ") : "—";
}

export function percent(n) {
  return `${Math.round(n)}%`;
}
