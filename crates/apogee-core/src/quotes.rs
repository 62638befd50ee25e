//! Rocket.Chat's quote attachments ("jump to message"): before a message is stored, each link in
//! it to a message of this workspace that the *sender* may read becomes an attachment quoting
//! that message (`apogee_domain::quote`), so every client draws the quote from the message alone.
//! A link to a message the sender cannot read stays a bare link and reveals nothing.

use crate::Core;
use crate::error::CoreResult;
use apogee_domain::quote::{
    MAX_QUOTES, linked_urls, put_quote, quote_attachment, quoted_message_id,
};
use apogee_domain::{Message, User};
use serde_json::Value;

impl Core {
    /// Adds the quote attachments of `message`'s message links (a message whose text the server
    /// cannot read, one without `md`, gets none).
    pub(crate) async fn attach_quotes(
        &self,
        actor: &User,
        message: &mut Message,
    ) -> CoreResult<()> {
        let Some(md) = &message.md else {
            return Ok(());
        };
        let site = self.settings.string("Site_Url");
        let links: Vec<(String, String)> = linked_urls(md)
            .into_iter()
            .filter_map(|url| quoted_message_id(&url, &site).map(|id| (url, id)))
            .take(MAX_QUOTES)
            .collect();
        if links.is_empty() {
            return Ok(());
        }
        let mut attachments = match message.extra.get("attachments") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list.clone(),
            // Attachments the client sent in a shape of its own are kept as they are.
            Some(_) => return Ok(()),
        };
        let use_real_name = self.settings.bool("UI_Use_Real_Name");
        let chain_limit = self.settings.int("Message_QuoteChainLimit");
        let mut quoted_any = false;
        for (url, id) in links {
            let Some(quoted) = self.store.message_by_id(&id).await? else {
                continue;
            };
            let Some(room) = self.store.room_by_id(&quoted.rid).await? else {
                continue;
            };
            let sub = self.store.subscription(&room.id, &actor.id).await?;
            if !self.authz.can_read_room(actor, &room, sub.as_ref()) {
                continue;
            }
            put_quote(
                &mut attachments,
                quote_attachment(&quoted, &url, use_real_name, chain_limit),
            );
            quoted_any = true;
        }
        if quoted_any {
            message
                .extra
                .insert("attachments".into(), Value::Array(attachments));
        }
        Ok(())
    }
}
