//! The I/O shell's half of [`crate::effect`]: carrying a list of effects out on the target's
//! cluster, in order, and keeping the record (`Progress`) in step with what was done.

use crate::EngineError;
use crate::cluster;
use crate::effect::Effect;
use crate::target::Run;

impl Run<'_> {
    /// Carries out `effects` in order. Stops at the first one the cluster refuses and returns
    /// why (the caller rolls back); `None` when every effect was carried out.
    pub(crate) async fn apply(
        &mut self,
        client: &kube::Client,
        effects: Vec<Effect>,
    ) -> Result<Option<String>, EngineError> {
        for effect in effects {
            match effect {
                Effect::Capacity(sizes) => cluster::carry_out(client, &sizes).await?,
                Effect::SetMesh(split) => {
                    if let Some(refused) = self.set_mesh(client, split, false).await? {
                        return Ok(Some(refused));
                    }
                }
                Effect::PromoteAutoscalers => self.promote_autoscalers(client).await?,
                Effect::RestoreAutoscalers => self.restore_autoscalers(client).await?,
                Effect::RemoveBaselines => self.remove_baselines(client).await?,
                Effect::RestoreRouting => self.restore_routing(client).await?,
                Effect::FinishRouting => self.finish_routing(client).await?,
                Effect::CleanUpRouting => self.clean_up_routing(client).await?,
                Effect::DeleteCreated(created) => {
                    crate::objects::delete_created(client, &created).await?;
                    self.progress.created.retain(|c| !created.contains(c));
                }
                Effect::RestorePrevious(previous) => {
                    for p in &previous {
                        p.restore(client).await?;
                    }
                    self.progress
                        .previous
                        .retain(|kept| !previous.iter().any(|p| p.object == kept.object));
                }
            }
        }
        Ok(None)
    }
}
