// Reading files for Python: load_file() reads every group, dataset and attribute of an HDF5 file
// (a results file of any number of groups, a data file) into nested dicts of numpy arrays with
// the stored dtypes (the {r, i} compound as complex128); read_keras() is what
// `eirnn spectrum --keras` reads (host/io/keras.hpp), as dicts.
#include <nanobind/stl/string.h>

#include <hdf5.h>

#include "host/core/error.hpp"
#include "host/io/h5.hpp"
#include "host/io/keras.hpp"
#include "python/src/common.hpp"

namespace eirnn::py {

namespace {

template <class T>
nb::object read_as(hid_t ds, hid_t mem_type, const std::vector<std::size_t>& shape) {
    std::size_t count = 1;
    for (std::size_t d : shape) count *= d;
    std::vector<T> v(count);
    if (count > 0 && H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
        throw Error("cannot read a dataset");
    return take(std::move(v), shape);
}

nb::object read_dataset(hid_t loc, const std::string& name, const std::string& where) {
    h5::Id ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT));
    h5::Id space(H5Dget_space(ds));
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(rank > 0 ? rank : 0);
    if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    std::vector<std::size_t> shape(dims.begin(), dims.end());
    h5::Id type(H5Dget_type(ds));
    const H5T_class_t cls = H5Tget_class(type);
    const std::size_t size = H5Tget_size(type);
    if (cls == H5T_FLOAT)
        return size <= 4 ? read_as<float>(ds, H5T_NATIVE_FLOAT, shape)
                         : read_as<double>(ds, H5T_NATIVE_DOUBLE, shape);
    if (cls == H5T_INTEGER) {
        const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
        switch (size) {
            case 1:
                return is_signed ? read_as<std::int8_t>(ds, H5T_NATIVE_INT8, shape)
                                 : read_as<std::uint8_t>(ds, H5T_NATIVE_UINT8, shape);
            case 2:
                return is_signed ? read_as<std::int16_t>(ds, H5T_NATIVE_INT16, shape)
                                 : read_as<std::uint16_t>(ds, H5T_NATIVE_UINT16, shape);
            case 4:
                return is_signed ? read_as<std::int32_t>(ds, H5T_NATIVE_INT32, shape)
                                 : read_as<std::uint32_t>(ds, H5T_NATIVE_UINT32, shape);
            default:
                return is_signed ? read_as<std::int64_t>(ds, H5T_NATIVE_INT64, shape)
                                 : read_as<std::uint64_t>(ds, H5T_NATIVE_UINT64, shape);
        }
    }
    if (cls == H5T_COMPOUND && H5Tget_nmembers(type) == 2) {
        h5::Id mem(H5Tcreate(H5T_COMPOUND, sizeof(cplx)));
        H5Tinsert(mem, "r", 0, H5T_NATIVE_DOUBLE);
        H5Tinsert(mem, "i", sizeof(double), H5T_NATIVE_DOUBLE);
        return read_as<cplx>(ds, mem, shape);
    }
    throw InputError(where + "/" + name + ": a dataset type the Python reader does not know");
}

nb::object read_attr(hid_t obj, const std::string& name) {
    h5::Id a(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
    h5::Id type(H5Aget_type(a));
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING) {
        std::vector<std::string> v = h5::read_attr_strings(obj, name);
        if (v.size() == 1) return nb::cast(v[0]);
        nb::list l;
        for (auto& s : v) l.append(s);
        return l;
    }
    if (cls == H5T_INTEGER) {
        std::int64_t v = 0;
        H5Aread(a, H5T_NATIVE_INT64, &v);
        return nb::int_(v);
    }
    if (cls == H5T_FLOAT) return nb::float_(h5::read_attr_double(obj, name));
    return nb::none();
}

herr_t collect_attr(hid_t, const char* name, const H5A_info_t*, void* out) {
    static_cast<std::vector<std::string>*>(out)->push_back(name);
    return 0;
}

/// {"attrs": {...}, name: array or sub-dict, ...} of a group.
nb::dict read_group(hid_t g, const std::string& where) {
    nb::dict d;
    nb::dict attrs;
    std::vector<std::string> names;
    hsize_t idx = 0;
    H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, &names);
    for (const std::string& n : names) attrs[n.c_str()] = read_attr(g, n);
    d["attrs"] = attrs;
    for (const std::string& child : h5::children(g)) {
        H5I_type_t kind;
        {
            h5::Id obj(H5Oopen(g, child.c_str(), H5P_DEFAULT));
            if (!obj.valid()) continue;
            kind = H5Iget_type(obj);
        }
        if (kind == H5I_GROUP) {
            h5::Id sub = h5::open_group(g, child);
            d[child.c_str()] = read_group(sub, where + "/" + child);
        } else if (kind == H5I_DATASET) {
            d[child.c_str()] = read_dataset(g, child, where);
        }
    }
    return d;
}

nb::dict load_file(const std::string& path) {
    h5::Id f = h5::open_untrusted(path);
    h5::Id root(H5Gopen2(f, "/", H5P_DEFAULT));
    return read_group(root, path);
}

nb::object vec(std::vector<double>& v, std::vector<std::size_t> shape) {
    if (v.empty()) return nb::none();
    return take(std::move(v), std::move(shape));
}

nb::dict read_keras_file(const std::string& path) {
    KerasModel m;
    {
        nb::gil_scoped_release release;
        m = read_keras(path);
    }
    nb::dict d;
    d["path"] = m.path;
    d["keras_version"] = m.keras_version;
    nb::list layers;
    for (KerasRnn& l : m.layers) {
        const std::size_t N = l.N, I = l.I, O = l.O;
        nb::dict e;
        e["layer"] = l.layer;
        e["N"] = l.N;
        e["I"] = l.I;
        e["O"] = l.O;
        e["W_rec"] = vec(l.w_rec, {N, N});
        e["W_in"] = vec(l.w_in, {N, I});
        e["b"] = vec(l.b, {N});
        e["W_out"] = vec(l.w_out, {O, N});
        e["b_out"] = vec(l.b_out, {O});
        layers.append(e);
    }
    d["layers"] = layers;
    return d;
}

}  // namespace

void bind_io(nb::module_& m) {
    h5::quiet();
    m.def("load_file", &load_file, nb::arg("path"),
          "Every group, dataset and attribute of an HDF5 file as nested dicts.");
    m.def("read_keras", &read_keras_file, nb::arg("path"),
          "The SimpleRNN layers of a Keras HDF5 model (what `eirnn spectrum --keras` reads).");
}

}  // namespace eirnn::py
