//! Every stored version of every form with its tally layout: tallies and responses name a
//! form version, and old versions stay readable after a form moves on.

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DbErr, EntityTrait};

use super::tally::Layout;
use crate::entities::form;
use crate::forms::Form;

#[derive(Debug)]
pub struct Versioned {
    pub form: Form,
    pub layout: Layout,
}

#[derive(Clone, Debug, Default)]
pub struct Catalog {
    versions: Arc<HashMap<(String, i32), Arc<Versioned>>>,
}

impl Catalog {
    pub async fn load(db: &impl ConnectionTrait) -> Result<Catalog, DbErr> {
        let mut versions = HashMap::new();
        for row in form::Entity::find().all(db).await? {
            let form: Form = serde_json::from_str(&row.definition)
                .map_err(|e| DbErr::Custom(format!("stored form {} v{} is unreadable: {e}", row.id, row.version)))?;
            let layout = Layout::for_form(&form);
            versions.insert((row.id, row.version), Arc::new(Versioned { form, layout }));
        }
        Ok(Catalog { versions: Arc::new(versions) })
    }

    pub fn get(&self, id: &str, version: i32) -> Option<&Arc<Versioned>> {
        self.versions.get(&(id.to_string(), version))
    }

    /// The newest stored version of a form.
    pub fn latest(&self, id: &str) -> Option<&Arc<Versioned>> {
        self.versions.iter().filter(|((i, _), _)| i == id).max_by_key(|((_, v), _)| *v).map(|(_, f)| f)
    }
}
