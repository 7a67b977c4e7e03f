//! Devices: clients (ActiveSync phones and the like) that identify themselves with a stable,
//! client-chosen device id. One row per (user, device id).

use std::fmt;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use serde::Serialize;

use crate::entity::{device, user};
use crate::error::{is_foreign_key_violation, DbResultExt};
use crate::validate;
use crate::{time, Storage, StorageError};

const MAX_DEVICE_ID: usize = 128;
const MAX_DEVICE_TYPE: usize = 128;
const MAX_USER_AGENT: usize = 512;
const MAX_PROTOCOL: usize = 32;
const MAX_POLICY_KEY: usize = 64;

/// Remote-wipe progress of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WipeState {
    /// No wipe requested.
    None,
    /// An administrator requested a wipe; it is sent on the device's next contact.
    Requested,
    /// The device confirmed the wipe.
    Acknowledged,
}

impl WipeState {
    /// The stored name: `none`, `requested` or `acknowledged`.
    pub fn as_str(self) -> &'static str {
        match self {
            WipeState::None => "none",
            WipeState::Requested => "requested",
            WipeState::Acknowledged => "acknowledged",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<WipeState> {
        match name {
            "none" => Some(WipeState::None),
            "requested" => Some(WipeState::Requested),
            "acknowledged" => Some(WipeState::Acknowledged),
            _ => None,
        }
    }
}

impl fmt::Display for WipeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a protocol handler learned from one contact with a device; input of
/// [`Storage::upsert_device`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSeen {
    /// Address of the authenticated user.
    pub user: String,
    /// The client-chosen device id (1–128 bytes).
    pub device_id: String,
    /// Client-reported device type, e.g. `iPhone` (may be empty).
    pub device_type: String,
    /// Client-reported user agent.
    pub user_agent: Option<String>,
    /// Protocol, e.g. `activesync`.
    pub protocol: String,
    /// Policy key to record; `None` keeps the stored one.
    pub policy_key: Option<String>,
}

/// A known device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Database identifier.
    pub id: i64,
    /// Address of the owning user.
    pub user: String,
    /// The client-chosen device id.
    pub device_id: String,
    /// Client-reported device type.
    pub device_type: String,
    /// Client-reported user agent.
    pub user_agent: Option<String>,
    /// Protocol, e.g. `activesync`.
    pub protocol: String,
    /// Provisioning policy key, once one was issued.
    pub policy_key: Option<String>,
    /// Remote-wipe progress.
    pub wipe_state: WipeState,
    /// First contact (UTC).
    pub first_seen: DateTime<Utc>,
    /// Latest contact (UTC).
    pub last_seen: DateTime<Utc>,
}

fn to_device(m: device::Model, user: String) -> Result<Device, StorageError> {
    let wipe_state = WipeState::from_name(&m.wipe_state).ok_or_else(|| StorageError::Corrupt {
        what: format!("wipe state of device {:?} of {user:?}", m.device_id),
        cause: format!(
            "{:?} is not one of \"none\", \"requested\", \"acknowledged\"",
            m.wipe_state
        ),
    })?;
    Ok(Device {
        id: m.id,
        user,
        device_id: m.device_id,
        device_type: m.device_type,
        user_agent: m.user_agent,
        protocol: m.protocol,
        policy_key: m.policy_key,
        wipe_state,
        first_seen: m.first_seen,
        last_seen: m.last_seen,
    })
}

fn check_device_id(device_id: &str) -> Result<(), StorageError> {
    validate::text("device id", device_id, MAX_DEVICE_ID, false)
}

impl Storage {
    /// Records a contact with a device: inserts it (first and last seen now, no wipe pending)
    /// or updates type, user agent, protocol, last-seen time and, if given, the policy key.
    /// The user must exist. Returns the stored device.
    pub async fn upsert_device(&self, d: &DeviceSeen) -> Result<Device, StorageError> {
        use device::Column as C;
        let addr = validate::address(&d.user)?;
        check_device_id(&d.device_id)?;
        validate::text("device type", &d.device_type, MAX_DEVICE_TYPE, true)?;
        if let Some(ua) = &d.user_agent {
            validate::text("user agent", ua, MAX_USER_AGENT, true)?;
        }
        validate::text("protocol", &d.protocol, MAX_PROTOCOL, false)?;
        if let Some(key) = &d.policy_key {
            validate::text("policy key", key, MAX_POLICY_KEY, true)?;
        }
        let user = self.require_user(&addr).await?;
        let now = time::now();
        let context = || format!("recording device {:?} of {:?}", d.device_id, addr.full);

        let mut insert = Query::insert();
        insert
            .into_table(device::Entity)
            .columns([
                C::UserId,
                C::DeviceId,
                C::DeviceType,
                C::UserAgent,
                C::Protocol,
                C::PolicyKey,
                C::WipeState,
                C::FirstSeen,
                C::LastSeen,
            ])
            .values([
                user.id.into(),
                d.device_id.clone().into(),
                d.device_type.clone().into(),
                d.user_agent.clone().into(),
                d.protocol.clone().into(),
                d.policy_key.clone().into(),
                WipeState::None.as_str().into(),
                now.into(),
                now.into(),
            ])
            .map_err(|e| StorageError::Internal(format!("{}: {e}", context())))?;
        let mut update = vec![C::DeviceType, C::UserAgent, C::Protocol, C::LastSeen];
        if d.policy_key.is_some() {
            update.push(C::PolicyKey);
        }
        insert.on_conflict(
            OnConflict::columns([C::UserId, C::DeviceId])
                .update_columns(update)
                .to_owned(),
        );

        let txn = self.db.begin().await.ctx(context)?;
        let stmt = txn.get_database_backend().build(&insert);
        match txn.execute(stmt).await {
            Ok(_) => {}
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StorageError::UserNotFound { address: addr.full })
            }
            Err(e) => return Err(e).ctx(context),
        }
        let row = device::Entity::find()
            .filter(C::UserId.eq(user.id))
            .filter(C::DeviceId.eq(&d.device_id))
            .one(&txn)
            .await
            .ctx(context)?
            .ok_or_else(|| {
                StorageError::Internal(format!("{}: the row just written is missing", context()))
            })?;
        txn.commit().await.ctx(context)?;
        to_device(row, addr.full)
    }

    /// Devices sorted by user address and device id: all of them, or those of one user (who
    /// must exist).
    pub async fn list_devices(&self, user: Option<&str>) -> Result<Vec<Device>, StorageError> {
        let mut query = device::Entity::find()
            .find_also_related(user::Entity)
            .order_by_asc(user::Column::Address)
            .order_by_asc(device::Column::DeviceId);
        if let Some(address) = user {
            let addr = validate::address(address)?;
            let owner = self.require_user(&addr).await?;
            query = query.filter(device::Column::UserId.eq(owner.id));
        }
        let rows = query
            .all(&self.db)
            .await
            .ctx(|| "listing devices".to_owned())?;
        rows.into_iter()
            .filter_map(|(d, u)| u.map(|u| (d, u.address)))
            .map(|(d, address)| to_device(d, address))
            .collect()
    }

    /// One device of a user (who must exist), if known.
    pub async fn device(
        &self,
        user: &str,
        device_id: &str,
    ) -> Result<Option<Device>, StorageError> {
        let addr = validate::address(user)?;
        check_device_id(device_id)?;
        let owner = self.require_user(&addr).await?;
        let row = device::Entity::find()
            .filter(device::Column::UserId.eq(owner.id))
            .filter(device::Column::DeviceId.eq(device_id))
            .one(&self.db)
            .await
            .ctx(|| format!("looking up device {device_id:?} of {:?}", addr.full))?;
        row.map(|r| to_device(r, addr.full)).transpose()
    }

    /// Forgets a device of a user (who must exist). Returns `false` if it was not known.
    pub async fn remove_device(&self, user: &str, device_id: &str) -> Result<bool, StorageError> {
        let addr = validate::address(user)?;
        check_device_id(device_id)?;
        let owner = self.require_user(&addr).await?;
        let deleted = device::Entity::delete_many()
            .filter(device::Column::UserId.eq(owner.id))
            .filter(device::Column::DeviceId.eq(device_id))
            .exec(&self.db)
            .await
            .ctx(|| format!("removing device {device_id:?} of {:?}", addr.full))?;
        Ok(deleted.rows_affected > 0)
    }

    /// Sets the remote-wipe state of a device of a user (who must exist). Returns `false` if
    /// the device is not known.
    pub async fn set_device_wipe_state(
        &self,
        user: &str,
        device_id: &str,
        state: WipeState,
    ) -> Result<bool, StorageError> {
        let addr = validate::address(user)?;
        check_device_id(device_id)?;
        let owner = self.require_user(&addr).await?;
        let updated = device::Entity::update_many()
            .col_expr(device::Column::WipeState, Expr::value(state.as_str()))
            .filter(device::Column::UserId.eq(owner.id))
            .filter(device::Column::DeviceId.eq(device_id))
            .exec(&self.db)
            .await
            .ctx(|| format!("updating device {device_id:?} of {:?}", addr.full))?;
        Ok(updated.rows_affected > 0)
    }
}
