//! The operation mix: weights per operation, parsed from `gtg=1,get=8,put=1,list=0`.

use std::str::FromStr;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Gtg,
    Get,
    Put,
    List,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Gtg, Op::Get, Op::Put, Op::List];

    pub fn name(self) -> &'static str {
        match self {
            Op::Gtg => "gtg",
            Op::Get => "get",
            Op::Put => "put",
            Op::List => "list",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    weights: [u32; 4],
    total: u32,
}

impl Mix {
    pub fn pick(&self, rng: &mut impl Rng) -> Op {
        let mut roll = rng.random_range(0..self.total);
        for (op, weight) in Op::ALL.into_iter().zip(self.weights) {
            if roll < weight {
                return op;
            }
            roll -= weight;
        }
        unreachable!("roll is below the total weight")
    }

    pub fn weight(&self, op: Op) -> u32 {
        self.weights[op as usize]
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut weights = [0u32; 4];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (op, weight) = part.split_once('=').ok_or_else(|| format!("{part:?}: expected op=weight"))?;
            let op = Op::ALL
                .into_iter()
                .find(|o| o.name() == op.trim())
                .ok_or_else(|| format!("unknown operation {op:?} (gtg, get, put, list)"))?;
            weights[op as usize] =
                weight.trim().parse().map_err(|_| format!("{part:?}: weight must be a whole number"))?;
        }
        let total = weights.iter().sum();
        if total == 0 {
            return Err("the mix needs at least one operation with a weight above 0".into());
        }
        Ok(Self { weights, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_picks_by_weight() {
        let mix: Mix = "gtg=1, get=3,put=0".parse().unwrap();
        let mut rng = rand::rng();
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[mix.pick(&mut rng) as usize] += 1;
        }
        assert_eq!(counts[Op::Put as usize], 0);
        assert_eq!(counts[Op::List as usize], 0);
        let ratio = f64::from(counts[Op::Get as usize]) / f64::from(counts[Op::Gtg as usize]);
        assert!((2.7..3.3).contains(&ratio), "{ratio}");
    }

    #[test]
    fn rejects_nonsense() {
        assert!("".parse::<Mix>().is_err());
        assert!("get=0".parse::<Mix>().is_err());
        assert!("fly=1".parse::<Mix>().is_err());
        assert!("get".parse::<Mix>().is_err());
        assert!("get=-1".parse::<Mix>().is_err());
    }
}
