//! The forms table: each loaded form with its content hash, so a form cannot silently change
//! under an id/version that already has responses.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

use crate::entities::{form, response};
use crate::forms::FormRegistry;

/// Stores each form of the registry; refuses (with a message naming the file) a form whose
/// content changed under an id/version that already has responses.
pub async fn sync(db: &impl ConnectionTrait, forms: &FormRegistry) -> anyhow::Result<()> {
    for loaded in forms.all() {
        let f = &loaded.form;
        let stored = form::Entity::find_by_id((f.id.clone(), f.version)).one(db).await?;
        match stored {
            Some(row) if row.content_hash == loaded.content_hash => {}
            Some(row) => {
                let responses = response::Entity::find()
                    .filter(response::Column::FormId.eq(f.id.clone()))
                    .filter(response::Column::FormVersion.eq(f.version))
                    .count(db)
                    .await?;
                anyhow::ensure!(
                    responses == 0,
                    "{}: form {} version {} changed, but {responses} responses were given \
                     under that version (stored hash {}, file hash {}). Keep the published \
                     text and publish the change as version {}.",
                    loaded.source,
                    f.id,
                    f.version,
                    &row.content_hash[..12.min(row.content_hash.len())],
                    &loaded.content_hash[..12],
                    f.version + 1
                );
                let mut active: form::ActiveModel = row.into();
                active.content_hash = Set(loaded.content_hash.clone());
                active.definition = Set(loaded.definition.clone());
                active.update(db).await?;
            }
            None => {
                form::ActiveModel {
                    id: Set(f.id.clone()),
                    version: Set(f.version),
                    content_hash: Set(loaded.content_hash.clone()),
                    definition: Set(loaded.definition.clone()),
                }
                .insert(db)
                .await?;
            }
        }
    }
    Ok(())
}
