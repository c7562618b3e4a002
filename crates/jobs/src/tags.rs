//! What a repository snapshot records about its catalog image, as snapshot tags, so the catalog
//! can be checked against the repositories and rebuilt from them.

use drydock_catalog::{Image, ImageType, ResourceType, Team};

const PREFIX: &str = "drydock:";

/// The catalog identity of a repository snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoTags {
    pub team_uuid: String,
    pub image_id: i64,
    pub image_uuid: String,
    pub kind: ImageType,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub name: String,
}

impl RepoTags {
    pub fn of(team: &Team, image: &Image) -> RepoTags {
        RepoTags {
            team_uuid: team.uuid.clone(),
            image_id: image.id,
            image_uuid: image.uuid.clone(),
            kind: image.kind,
            resource_type: image.resource_type,
            resource_id: image.resource_id.clone(),
            name: image.name.clone(),
        }
    }

    pub fn encode(&self) -> Vec<String> {
        vec![
            format!("{PREFIX}team={}", self.team_uuid),
            format!("{PREFIX}image={}", self.image_id),
            format!("{PREFIX}uuid={}", self.image_uuid),
            format!("{PREFIX}type={}", self.kind),
            format!("{PREFIX}resource={}/{}", self.resource_type, self.resource_id),
            // Last: the name may contain anything but a newline.
            format!("{PREFIX}name={}", self.name),
        ]
    }

    /// The identity in a snapshot's tags; `None` for snapshots not made by the daemon (the
    /// `drydock image backup` command, for one).
    pub fn decode(tags: &[String]) -> Option<RepoTags> {
        let get = |key: &str| {
            let wanted = format!("{PREFIX}{key}=");
            tags.iter().find_map(|t| t.strip_prefix(&wanted)).map(str::to_string)
        };
        let (resource_type, resource_id) =
            get("resource")?.split_once('/').map(|(t, i)| (t.to_string(), i.to_string()))?;
        Some(RepoTags {
            team_uuid: get("team")?,
            image_id: get("image")?.parse().ok()?,
            image_uuid: get("uuid")?,
            kind: ImageType::parse(&get("type")?)?,
            resource_type: ResourceType::parse(&resource_type)?,
            resource_id,
            name: get("name")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_roundtrip_and_foreign_snapshots_have_none() {
        let tags = RepoTags {
            team_uuid: "t-1".into(),
            image_id: 42,
            image_uuid: "u-1".into(),
            kind: ImageType::Backup,
            resource_type: ResourceType::Volume,
            resource_id: "5b0c/odd".into(),
            name: "nightly = before upgrade, drydock:image=7".into(),
        };
        assert_eq!(RepoTags::decode(&tags.encode()), Some(tags));
        assert_eq!(RepoTags::decode(&["manual".to_string()]), None);
    }
}
