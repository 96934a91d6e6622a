"""Values tests need but are not about: a migration's predicted cost and parameters where any will do.

A test whose subject is the cost or the parameters writes its own; these say "not what this test checks".
"""

from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Technique

COST = MigrationCost(Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True,
                     ModelRef("test", "0"))
PARAMETERS = MigrationParameters(Technique.PRECOPY, 100, 300)
