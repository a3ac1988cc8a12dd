"""Teaching and visualisation tools: see the graph, the filters, the feature maps, the conv
matrix and the shapes (curriculum in docs/tutorial.md).

Nothing here is a hard dependency of the core: pictures need matplotlib, rendering graphs
needs Graphviz's ``dot``; without them the functions that need them raise a clear error and
everything else (DOT text, matrices, tables) still works.
"""
from .graph import (BackwardStep, GraphvizNotFound, draw_graph, op_name, record_modules,  # noqa: F401
                    save_graph, trace_backward)
from .conv_matrix import conv_matrix, conv_transpose_matrix  # noqa: F401
from .summary import (DimExplanation, LayerRow, SeparableComparison, Summary, count_parameters,  # noqa: F401
                      explain_conv, explain_conv_transpose, explain_pool, separable_comparison, summary)
from .pictures import (activation_maps, filter_tiles, has_matplotlib, require_matplotlib,  # noqa: F401
                       save_activation_maps, save_filter_grid, save_images, save_matrix, tile_grid)
