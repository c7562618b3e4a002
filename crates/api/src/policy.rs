//! Backup policies as DigitalOcean defines them: `plan` daily or weekly, `weekday`, `hour`
//! (the start of a 4-hour window), and the retention that follows from the plan. They are
//! stored now; the scheduler that acts on them is issue 4's.

use serde_json::{Value, json};

use crate::error::ApiError;

pub const WINDOW_HOURS: u64 = 4;
pub const WINDOW_STARTS: [u64; 6] = [0, 4, 8, 12, 16, 20];
pub const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Checks a policy from a request and fills in the read-only fields. A missing policy is
/// DigitalOcean's default: daily, window starting at 0.
pub fn normalize(given: Option<&Value>) -> Result<Value, ApiError> {
    let empty = json!({});
    let given = given.unwrap_or(&empty);
    let Some(object) = given.as_object() else {
        return Err(ApiError::unprocessable("backup_policy must be an object"));
    };
    let plan = match object.get("plan") {
        None | Some(Value::Null) => "daily",
        Some(Value::String(plan)) if plan == "daily" || plan == "weekly" => plan.as_str(),
        Some(other) => {
            return Err(ApiError::unprocessable(format!("backup_policy.plan must be daily or weekly, not {other}")));
        }
    };
    let hour = match object.get("hour") {
        None | Some(Value::Null) => 0,
        Some(value) => match value.as_u64().filter(|h| WINDOW_STARTS.contains(h)) {
            Some(hour) => hour,
            None => {
                return Err(ApiError::unprocessable(format!(
                    "backup_policy.hour must be one of 0, 4, 8, 12, 16, 20, not {value}"
                )));
            }
        },
    };
    let mut policy = json!({
        "plan": plan,
        "hour": hour,
        "window_length_hours": WINDOW_HOURS,
        "retention_period_days": if plan == "weekly" { 28 } else { 7 },
    });
    // Checked for every plan, so that a bad weekday is refused rather than silently dropped; only
    // weekly plans keep it.
    let weekday = match object.get("weekday") {
        None | Some(Value::Null) => "SUN",
        Some(Value::String(day)) if WEEKDAYS.contains(&day.as_str()) => day.as_str(),
        Some(other) => {
            return Err(ApiError::unprocessable(format!("backup_policy.weekday must be one of SUN..SAT, not {other}")));
        }
    };
    if plan == "weekly" {
        policy["weekday"] = weekday.into();
    }
    Ok(policy)
}

/// What `GET /v2/droplets/backups/supported_policies` says.
pub fn supported() -> Value {
    json!([
        {"name": "weekly", "possible_window_starts": WINDOW_STARTS, "window_length_hours": WINDOW_HOURS,
         "retention_period_days": 28, "possible_days": WEEKDAYS},
        {"name": "daily", "possible_window_starts": WINDOW_STARTS, "window_length_hours": WINDOW_HOURS,
         "retention_period_days": 7, "possible_days": []},
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_get_defaults_and_bad_values_are_refused() {
        let daily = normalize(None).unwrap();
        assert_eq!(daily["plan"], "daily");
        assert_eq!(daily["retention_period_days"], 7);
        let weekly = normalize(Some(&json!({"plan": "weekly", "weekday": "THU", "hour": 20}))).unwrap();
        assert_eq!(weekly["weekday"], "THU");
        assert_eq!(weekly["retention_period_days"], 28);
        assert!(normalize(Some(&json!({"plan": "hourly"}))).is_err());
        assert!(normalize(Some(&json!({"hour": 3}))).is_err());
        assert!(normalize(Some(&json!({"plan": "weekly", "weekday": "someday"}))).is_err());
        assert!(normalize(Some(&json!({"plan": "daily", "weekday": {}}))).is_err());
        assert!(normalize(Some(&json!({"plan": "daily", "weekday": "MON"}))).unwrap().get("weekday").is_none());
        assert!(normalize(Some(&json!("daily"))).is_err());
    }
}
