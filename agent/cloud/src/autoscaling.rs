//! EC2 Auto Scaling: a group's capacity and instances.

/// One instance of a group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupInstance {
    /// The EC2 instance id.
    pub id: String,
    /// `Pending`, `InService`, `Terminating`, ...
    pub lifecycle_state: String,
    /// `Healthy` or `Unhealthy`.
    pub health_status: String,
    /// Its Availability Zone.
    pub availability_zone: String,
}

impl GroupInstance {
    /// Serving: `InService` and `Healthy`.
    pub fn serving(&self) -> bool {
        self.lifecycle_state == "InService" && self.health_status == "Healthy"
    }
}

/// An Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScalingGroup {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its region.
    pub region: String,
    /// Minimum size.
    pub min_size: u32,
    /// Maximum size.
    pub max_size: u32,
    /// The capacity it is asked to hold.
    pub desired_capacity: u32,
    /// Its instances.
    pub instances: Vec<GroupInstance>,
}

impl ScalingGroup {
    /// How many instances are `InService` and `Healthy`.
    pub fn in_service(&self) -> u32 {
        u32::try_from(self.instances.iter().filter(|i| i.serving()).count()).unwrap_or(u32::MAX)
    }

    /// Whether it holds its desired capacity in service.
    pub fn at_capacity(&self) -> bool {
        self.in_service() >= self.desired_capacity
    }
}

/// The capacity to set; a size not given stays as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capacity {
    /// New minimum size.
    pub min_size: Option<u32>,
    /// New maximum size.
    pub max_size: Option<u32>,
    /// New desired capacity.
    pub desired: u32,
}

/// What `set-capacity` would change on `group`: the (min, max, desired)
/// the group ends with, and whether anything differs; or why the capacity
/// is refused (desired outside the bounds it would end with). One rule for
/// every backend.
pub fn capacity_change(group: &ScalingGroup, c: &Capacity) -> Result<((u32, u32, u32), bool), String> {
    let min = c.min_size.unwrap_or(group.min_size);
    let max = c.max_size.unwrap_or(group.max_size);
    if min > max || c.desired < min || c.desired > max {
        return Err(format!(
            "desired capacity {} must lie within the group's minimum {min} and maximum {max} (after this change); give min-size or max-size too",
            c.desired
        ));
    }
    let target = (min, max, c.desired);
    Ok((target, target != (group.min_size, group.max_size, group.desired_capacity)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(min: u32, max: u32, desired: u32) -> ScalingGroup {
        ScalingGroup { name: "g".into(), arn: "arn".into(), region: "r".into(), min_size: min, max_size: max, desired_capacity: desired, instances: vec![] }
    }

    #[test]
    fn a_change_is_within_bounds_and_noticed_only_when_different() {
        let g = group(0, 4, 0);
        assert_eq!(capacity_change(&g, &Capacity { min_size: None, max_size: None, desired: 3 }), Ok(((0, 4, 3), true)));
        assert_eq!(capacity_change(&g, &Capacity { min_size: Some(0), max_size: Some(4), desired: 0 }), Ok(((0, 4, 0), false)));
        assert!(capacity_change(&g, &Capacity { min_size: None, max_size: None, desired: 5 }).unwrap_err().contains("maximum 4"));
        assert_eq!(capacity_change(&g, &Capacity { min_size: Some(2), max_size: Some(8), desired: 6 }), Ok(((2, 8, 6), true)));
        assert!(capacity_change(&g, &Capacity { min_size: Some(5), max_size: Some(2), desired: 3 }).is_err());
    }
}
